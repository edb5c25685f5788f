"""KIS order, account and notice TRs, translated to and from the gateway's own types.

The services above speak ``BrokerAck``, ``BrokerOrderRow``, ``BrokerPosition`` and ``BrokerNotice``;
only this module knows order-cash / order-rvsecncl / inquire-daily-ccld / inquire-balance field names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kis.broker import fields as F
from kis.broker import trids as T
from kis.broker.errors import KisServerError
from kis.broker.pacing import Priority
from kis.broker.rest import KisResponse, KisRestClient

ORD_DVSN = {"LIMIT": "00", "MARKET": "01"}
SIDE_CODE = {"SELL": "01", "BUY": "02"}
SIDE_NAME = {v: k for k, v in SIDE_CODE.items()}
BALANCE_MAX_PAGES = 50
CCLD_MAX_PAGES = 50


@dataclass(frozen=True)
class AccountRef:
    cano: str  # 8 digits
    prdt: str  # 2 digits

    @classmethod
    def parse(cls, number: str) -> AccountRef:
        digits = number.replace("-", "").strip()
        if len(digits) != 10 or not digits.isdigit():
            raise ValueError("account number must be 8+2 digits, e.g. 12345678-01")
        return cls(digits[:8], digits[8:])

    @property
    def number(self) -> str:
        return f"{self.cano}-{self.prdt}"


@dataclass(frozen=True)
class BrokerAck:
    order_no: str  # ODNO, 10 digits
    branch: str  # KRX_FWDG_ORD_ORGNO
    order_time: str  # HHMMSS
    latency_ms: float = 0.0  # KIS round trip of the order call


@dataclass(frozen=True)
class BrokerOrderRow:
    """One row of inquire-daily-ccld."""

    order_date: str
    order_no: str
    orig_order_no: str
    side: str  # BUY / SELL
    symbol: str
    qty: int
    price: int
    order_time: str
    filled_qty: int
    avg_price: float
    filled_amount: int
    cancelled: bool
    cancelled_qty: int
    remaining_qty: int
    rejected_qty: int
    order_dvsn: str


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    name: str
    qty: int
    sellable_qty: int
    avg_price: float
    purchase_amount: int
    current_price: int
    eval_amount: int
    pnl: int
    pnl_rate: float


@dataclass(frozen=True)
class BrokerBalance:
    cash: int  # 예수금총금액
    d2_cash: int
    securities_eval: int
    total_eval: int
    purchase_total: int
    pnl_total: int


@dataclass(frozen=True)
class BrokerNotice:
    """An execution notice (H0STCNI0/9), decrypted and parsed."""

    account: str  # 10 digits
    order_no: str
    orig_order_no: str
    side: str
    rvse_cncl: str  # 0 new, 1 modify, 2 cancel
    symbol: str
    is_fill: bool
    refused: bool
    qty: int  # fill: filled qty; ack: order qty
    price: int  # fill: fill price; ack: order price
    time: str
    order_qty: int


def odno(value: object) -> str:
    """One spelling of a KIS order number, whichever a server sends: answers, notices and daily-ccld pad it to
    10 digits, paper samples send it bare ("6635"); an all-zero or blank original order number means none."""
    text = str(value or "").strip()
    if text.isdigit():
        return "" if int(text) == 0 else text.zfill(10)
    return text


def _cursor(body: dict[str, object], key: str) -> str:
    """A paging cursor; KIS sends these keys lowercase, some servers echo the request's UPPERCASE."""
    return str(body.get(key, body.get(key.upper(), "")) or "")


def _int(text: object) -> int:
    try:
        return int(float(str(text).strip() or "0"))
    except ValueError:
        return 0


def _float(text: object) -> float:
    try:
        return float(str(text).strip() or "0")
    except ValueError:
        return 0.0


def parse_notice(plaintext: str) -> BrokerNotice | None:
    """Both the current 26-field and the legacy 23-field layouts; None if it is neither."""
    v = plaintext.split("^")
    if len(v) < len(F.H0STCNI0_LEGACY):
        return None
    idx = {name: i for i, name in enumerate(F.H0STCNI0)}
    is_fill = v[idx["CNTG_YN"]] == "2"
    return BrokerNotice(
        account=v[idx["ACNT_NO"]], order_no=odno(v[idx["ODER_NO"]]), orig_order_no=odno(v[idx["OODER_NO"]]),
        side=SIDE_NAME.get(v[idx["SELN_BYOV_CLS"]], "?"), rvse_cncl=v[idx["RCTF_CLS"]],
        symbol=v[idx["STCK_SHRN_ISCD"]].strip(), is_fill=is_fill, refused=v[idx["RFUS_YN"]] == "1",
        qty=_int(v[idx["CNTG_QTY"]]), price=_int(v[idx["CNTG_UNPR"]]), time=v[idx["STCK_CNTG_HOUR"]],
        order_qty=_int(v[idx["ODER_QTY"]]),
    )


class KisOrderApi:
    def __init__(self, rest: KisRestClient, paper: bool) -> None:
        self.rest = rest
        self.paper = paper

    def _ack(self, r: KisResponse) -> BrokerAck:
        out = r.body.get("output") or {}
        # Order answers use UPPERCASE keys; accept lowercase too in case a server normalises them.
        get = lambda k: str(out.get(k, out.get(k.lower(), ""))).strip()  # noqa: E731
        order_no = odno(get("ODNO"))
        if not order_no:
            # "Success" without an order number: something may have been placed that we cannot identify, so
            # the outcome is unknown (reconciliation finds it) — never "not placed", never resubmitted.
            raise KisServerError("NO_ODNO", "KIS answered success without an order number (ODNO)", 200)
        return BrokerAck(order_no=order_no, branch=get("KRX_FWDG_ORD_ORGNO"), order_time=get("ORD_TMD"),
                         latency_ms=r.elapsed_ms)

    async def place_cash(self, account: AccountRef, symbol: str, side: str, order_type: str, qty: int,
                         price: int | None, on_wire: Callable[[], None] | None = None) -> BrokerAck:
        tr = (T.ORDER_BUY if side == "BUY" else T.ORDER_SELL).current(self.paper)
        body = {"CANO": account.cano, "ACNT_PRDT_CD": account.prdt, "PDNO": symbol,
                "ORD_DVSN": ORD_DVSN[order_type], "ORD_QTY": str(qty),
                "ORD_UNPR": str(price if order_type == "LIMIT" and price else 0), "EXCG_ID_DVSN_CD": "KRX"}
        if side == "SELL":
            body["SLL_TYPE"] = "01"
        r = await self.rest.call("POST", T.ORDER_CASH_PATH, tr, body=body, priority=Priority.ORDER, on_wire=on_wire)
        return self._ack(r)

    async def revise(self, account: AccountRef, branch: str, order_no: str, order_type: str, price: int | None,
                     qty: int | None, cancel: bool) -> BrokerAck:
        """Modify (price, all remaining) or cancel (``qty`` shares, or all remaining when None)."""
        tr = T.ORDER_RVSECNCL.current(self.paper)
        body = {"CANO": account.cano, "ACNT_PRDT_CD": account.prdt, "KRX_FWDG_ORD_ORGNO": branch,
                "ORGN_ODNO": order_no, "ORD_DVSN": ORD_DVSN[order_type], "RVSE_CNCL_DVSN_CD": "02" if cancel else "01",
                "ORD_QTY": str(qty or 0), "ORD_UNPR": str(price or 0), "QTY_ALL_ORD_YN": "Y" if qty is None else "N",
                "EXCG_ID_DVSN_CD": "KRX"}
        r = await self.rest.call("POST", T.ORDER_RVSECNCL_PATH, tr, body=body, priority=Priority.ORDER)
        return self._ack(r)

    async def daily_orders(self, account: AccountRef, day: str, priority: Priority = Priority.ORDER
                           ) -> list[BrokerOrderRow]:
        tr = T.INQUIRE_DAILY_CCLD.current(self.paper)
        rows: list[BrokerOrderRow] = []
        fk = nk = ""
        tr_cont = ""
        for _ in range(CCLD_MAX_PAGES):
            params = {"CANO": account.cano, "ACNT_PRDT_CD": account.prdt, "INQR_STRT_DT": day, "INQR_END_DT": day,
                      "SLL_BUY_DVSN_CD": "00", "INQR_DVSN": "01", "PDNO": "", "CCLD_DVSN": "00", "ORD_GNO_BRNO": "",
                      "ODNO": "", "INQR_DVSN_3": "00", "INQR_DVSN_1": "", "CTX_AREA_FK100": fk, "CTX_AREA_NK100": nk}
            r = await self.rest.call("GET", T.INQUIRE_DAILY_CCLD_PATH, tr, params=params, tr_cont=tr_cont,
                                     priority=priority)
            for row in r.body.get("output1") or []:
                rows.append(BrokerOrderRow(
                    order_date=str(row.get("ord_dt", "")), order_no=odno(row.get("odno")),
                    orig_order_no=odno(row.get("orgn_odno")),
                    side=SIDE_NAME.get(str(row.get("sll_buy_dvsn_cd", "")), "?"), symbol=str(row.get("pdno", "")),
                    qty=_int(row.get("ord_qty")), price=_int(row.get("ord_unpr")),
                    order_time=str(row.get("ord_tmd", "")),
                    filled_qty=_int(row.get("tot_ccld_qty")), avg_price=_float(row.get("avg_prvs")),
                    filled_amount=_int(row.get("tot_ccld_amt")), cancelled=str(row.get("cncl_yn", "")) == "Y",
                    cancelled_qty=_int(row.get("cnc_cfrm_qty", row.get("cncl_cfrm_qty"))),
                    remaining_qty=_int(row.get("rmn_qty")), rejected_qty=_int(row.get("rjct_qty")),
                    order_dvsn=str(row.get("ord_dvsn_cd", ""))))
            if not r.has_more:
                break
            fk = _cursor(r.body, "ctx_area_fk100")
            nk = _cursor(r.body, "ctx_area_nk100")
            tr_cont = "N"
        return rows

    async def balance(self, account: AccountRef, priority: Priority = Priority.ACCOUNT
                      ) -> tuple[list[BrokerPosition], BrokerBalance | None]:
        tr = T.INQUIRE_BALANCE.current(self.paper)
        positions: list[BrokerPosition] = []
        summary: BrokerBalance | None = None
        fk = nk = ""
        tr_cont = ""
        for _ in range(BALANCE_MAX_PAGES):
            # INQR_DVSN must be 01 since KIS restricted 02 on 2026-02-10.
            params = {"CANO": account.cano, "ACNT_PRDT_CD": account.prdt, "AFHR_FLPR_YN": "N", "OFL_YN": "",
                      "INQR_DVSN": "01", "UNPR_DVSN": "01", "FUND_STTL_ICLD_YN": "N", "FNCG_AMT_AUTO_RDPT_YN": "N",
                      "PRCS_DVSN": "00", "CTX_AREA_FK100": fk, "CTX_AREA_NK100": nk}
            r = await self.rest.call("GET", T.INQUIRE_BALANCE_PATH, tr, params=params, tr_cont=tr_cont,
                                     priority=priority)
            for row in r.body.get("output1") or []:
                positions.append(BrokerPosition(
                    symbol=str(row.get("pdno", "")), name=str(row.get("prdt_name", "")), qty=_int(row.get("hldg_qty")),
                    sellable_qty=_int(row.get("ord_psbl_qty")), avg_price=_float(row.get("pchs_avg_pric")),
                    purchase_amount=_int(row.get("pchs_amt")), current_price=_int(row.get("prpr")),
                    eval_amount=_int(row.get("evlu_amt")), pnl=_int(row.get("evlu_pfls_amt")),
                    pnl_rate=_float(row.get("evlu_pfls_rt"))))
            out2 = r.body.get("output2")
            first = out2[0] if isinstance(out2, list) and out2 else out2 if isinstance(out2, dict) else None
            if first:
                summary = BrokerBalance(
                    cash=_int(first.get("dnca_tot_amt")), d2_cash=_int(first.get("prvs_rcdl_excc_amt")),
                    securities_eval=_int(first.get("scts_evlu_amt")), total_eval=_int(first.get("tot_evlu_amt")),
                    purchase_total=_int(first.get("pchs_amt_smtl_amt")),
                    pnl_total=_int(first.get("evlu_pfls_smtl_amt")))
            if not r.has_more:
                break
            fk = _cursor(r.body, "ctx_area_fk100")
            nk = _cursor(r.body, "ctx_area_nk100")
            tr_cont = "N"
        return positions, summary
