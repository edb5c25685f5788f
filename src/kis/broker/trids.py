"""KIS REST paths and TR ids (reference §4.1)."""

from __future__ import annotations

from dataclasses import dataclass

TOKEN_PATH = "/oauth2/tokenP"
REVOKE_PATH = "/oauth2/revokeP"
APPROVAL_PATH = "/oauth2/Approval"
HASHKEY_PATH = "/uapi/hashkey"

INQUIRE_PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
ASKING_PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"
CHK_HOLIDAY_PATH = "/uapi/domestic-stock/v1/quotations/chk-holiday"
SEARCH_INFO_PATH = "/uapi/domestic-stock/v1/quotations/search-info"
SEARCH_STOCK_INFO_PATH = "/uapi/domestic-stock/v1/quotations/search-stock-info"
ORDER_CASH_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
ORDER_RVSECNCL_PATH = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
INQUIRE_BALANCE_PATH = "/uapi/domestic-stock/v1/trading/inquire-balance"
INQUIRE_PSBL_ORDER_PATH = "/uapi/domestic-stock/v1/trading/inquire-psbl-order"
INQUIRE_DAILY_CCLD_PATH = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
INQUIRE_PSBL_RVSECNCL_PATH = "/uapi/domestic-stock/v1/trading/inquire-psbl-rvsecncl"
OVERSEAS_PRICE_PATH = "/uapi/overseas-price/v1/quotations/price"
OVERSEAS_PRICE_DETAIL_PATH = "/uapi/overseas-price/v1/quotations/price-detail"

# Quotation TRs are the same on both hosts.
INQUIRE_PRICE = "FHKST01010100"
ASKING_PRICE = "FHKST01010200"
OVERSEAS_PRICE = "HHDFS00000300"
# Live-only TRs with no paper id ("모의투자 미지원" in the portal docs).
CHK_HOLIDAY = "CTCA0903R"
SEARCH_INFO = "CTPF1604R"  # 상품기본조회
SEARCH_STOCK_INFO = "CTPF1002R"  # 주식기본조회
OVERSEAS_PRICE_DETAIL = "HHDFS76200200"  # 해외주식 현재가상세


@dataclass(frozen=True)
class AccountTr:
    """A live TR id with its old (pre-2024) alias; the paper id swaps the first letter for ``V``."""

    live: str
    old: str | None = None

    def ids(self, paper: bool) -> tuple[str, ...]:
        names = (self.live,) + ((self.old,) if self.old else ())
        return tuple(paper_id(n) for n in names) if paper else names

    def current(self, paper: bool) -> str:
        return paper_id(self.live) if paper else self.live


def paper_id(tr_id: str) -> str:
    """The official helper's rule: live ids starting T, J or C become V + rest on the paper host."""
    return "V" + tr_id[1:] if tr_id[:1] in ("T", "J", "C") else tr_id


ORDER_BUY = AccountTr("TTTC0012U", "TTTC0802U")
ORDER_SELL = AccountTr("TTTC0011U", "TTTC0801U")
ORDER_RVSECNCL = AccountTr("TTTC0013U", "TTTC0803U")
INQUIRE_BALANCE = AccountTr("TTTC8434R")
INQUIRE_PSBL_ORDER = AccountTr("TTTC8908R")
INQUIRE_DAILY_CCLD = AccountTr("TTTC0081R", "TTTC8001R")
INQUIRE_DAILY_CCLD_OLD = AccountTr("CTSC9215R", "CTSC9115R")
INQUIRE_PSBL_RVSECNCL = AccountTr("TTTC0084R", "TTTC8036R")  # live only: no paper id

# Realtime TRs (reference §6.4).
RT_PRICE_KR = "H0STCNT0"
RT_ASKING_KR = "H0STASP0"
RT_PRICE_US = "HDFSCNT0"
RT_NOTICE_LIVE = "H0STCNI0"
RT_NOTICE_PAPER = "H0STCNI9"
RT_NOTICE_US_LIVE = "H0GSCNI0"
RT_NOTICE_US_PAPER = "H0GSCNI9"
PINGPONG = "PINGPONG"
