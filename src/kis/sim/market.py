"""Seeded random-walk market: one state per symbol, on the KRX tick grid, within the daily limits.

The same state answers REST quotes and feeds realtime records, so a REST price always equals the last
tick a WebSocket subscriber saw.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kis.broker import fields as F
from kis.clock import Clock
from kis.krx import price_limits, round_to_tick, step_ticks, tick_size
from kis.sim.symbols import (
    KRX_BY_CODE,
    US_BY_SYMBOL,
    US_PRDT_TYPE_CD,
    KrxSymbol,
    UsSymbol,
    is_preferred,
    krx_isin,
)

_VOLUMES = (1, 1, 2, 3, 5, 10, 10, 20, 50, 100, 150, 300)
USD_KRW = 1385.50  # the simulator's fixed exchange rate (price-detail t_rate/p_rate and won conversions)
LISTING_DATE = "20000104"  # the simulator's listing date for every KRX symbol (search-stock-info)


def _sign(diff: float, price: float, upper: float | None = None, lower: float | None = None) -> str:
    """KIS 전일대비부호: 1 상한 2 상승 3 보합 4 하한 5 하락."""
    if upper is not None and price >= upper:
        return "1"
    if lower is not None and price <= lower:
        return "4"
    return "2" if diff > 0 else "5" if diff < 0 else "3"


@dataclass
class KrxState:
    info: KrxSymbol
    base: int
    lower: int
    upper: int
    price: int
    open: int = 0
    high: int = 0
    low: int = 0
    open_hour: str = "090000"
    high_hour: str = "090000"
    low_hour: str = "090000"
    last_vol: int = 0
    acml_vol: int = 0
    acml_amount: int = 0
    sell_count: int = 0
    buy_count: int = 0
    sell_volume: int = 0
    buy_volume: int = 0
    last_side: str = "1"  # CCLD_DVSN 1 buy-initiated, 5 sell-initiated
    ask_qty: list[int] = field(default_factory=lambda: [0] * 10)
    bid_qty: list[int] = field(default_factory=lambda: [0] * 10)

    @property
    def ask1(self) -> int:
        return min(self.upper, self.price + tick_size(self.price)) if self.last_side == "5" else self.price

    @property
    def bid1(self) -> int:
        return self.price if self.last_side == "5" else max(self.lower, step_ticks(self.price, -1))

    @property
    def diff(self) -> int:
        return self.price - self.base

    @property
    def rate(self) -> str:
        return f"{self.diff / self.base * 100:.2f}"

    @property
    def wavg(self) -> str:
        return f"{self.acml_amount / self.acml_vol:.2f}" if self.acml_vol else f"{self.price:.2f}"


def _book_prices(st: KrxState) -> tuple[list[int], list[int]]:
    """The 10 ask and 10 bid levels (best first) around the last trade, clamped to the daily limits."""
    asks, bids = [st.ask1], [st.bid1]
    for _ in range(9):
        asks.append(min(st.upper, step_ticks(asks[-1], 1)))
        bids.append(max(st.lower, step_ticks(bids[-1], -1)))
    return asks, bids


@dataclass
class UsState:
    info: UsSymbol
    base: float
    price: float
    open: float
    high: float
    low: float
    last_vol: int = 0
    tvol: int = 0
    tamt: float = 0.0
    bid_vol: int = 0
    ask_vol: int = 0
    sell_volume: int = 0
    buy_volume: int = 0


@dataclass(frozen=True)
class Trade:
    """One simulated execution on the tape: what resting orders may match against."""

    code: str
    price: int
    volume: int


class Market:
    def __init__(self, clock: Clock, seed: int = 0) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.krx: dict[str, KrxState] = {}
        self.us: dict[str, UsState] = {}
        self.hhmmss = "000000"
        self.ymd = "19700101"
        self.mark_time()
        for info in KRX_BY_CODE.values():
            lower, upper = price_limits(info.base_price)
            self.krx[info.code] = KrxState(info, info.base_price, lower, upper, info.base_price)
            self._seed_open(self.krx[info.code])
        for us in US_BY_SYMBOL.values():
            self.us[us.symbol] = UsState(us, us.base_price, us.base_price, us.base_price, us.base_price,
                                         us.base_price)

    def _seed_open(self, st: KrxState) -> None:
        st.open = st.high = st.low = st.price
        st.ask_qty = [self.rng.randint(1_000, 80_000) for _ in range(10)]
        st.bid_qty = [self.rng.randint(1_000, 80_000) for _ in range(10)]

    def mark_time(self) -> None:
        """Read the clock once per market step; every record of the step carries the same stamp."""
        now = self.clock.now()
        self.hhmmss = f"{now.hour:02d}{now.minute:02d}{now.second:02d}"
        self.ymd = f"{now.year:04d}{now.month:02d}{now.day:02d}"

    # --- moving prices -------------------------------------------------------------------------

    def step_krx(self, code: str) -> Trade:
        """Advance one trade: a move of -2..+2 ticks (mostly 0/±1) and a random size."""
        st = self.krx[code]
        r = self.rng.random()
        move = 0 if r < 0.40 else (1 if r < 0.68 else -1 if r < 0.96 else (2 if r < 0.98 else -2))
        price = min(st.upper, max(st.lower, step_ticks(st.price, move)))
        volume = _VOLUMES[int(self.rng.random() * len(_VOLUMES))]
        return self._apply_trade(st, price, volume, "1" if move > 0 or (move == 0 and r < 0.2) else "5")

    def set_price(self, code: str, price: int) -> Trade:
        """Force the next trade's price (admin control for deterministic tests)."""
        st = self.krx[code]
        price = min(st.upper, max(st.lower, round_to_tick(price)))
        self.mark_time()
        return self._apply_trade(st, price, 1, "1" if price >= st.price else "5")

    def _apply_trade(self, st: KrxState, price: int, volume: int, side: str) -> Trade:
        hhmmss = self.hhmmss
        st.price = price
        st.last_vol = volume
        st.last_side = side
        if st.acml_vol == 0:
            st.open, st.open_hour = price, hhmmss
        if price > st.high or st.acml_vol == 0:
            st.high, st.high_hour = price, hhmmss
        if price < st.low or st.acml_vol == 0:
            st.low, st.low_hour = price, hhmmss
        st.acml_vol += volume
        st.acml_amount += price * volume
        if side == "1":
            st.buy_count += 1
            st.buy_volume += volume
        else:
            st.sell_count += 1
            st.sell_volume += volume
        r = self.rng.random()
        i = int(r * 10)
        delta = int(r * 10_000) % 1001 - 500
        st.ask_qty[i] = max(1, st.ask_qty[i] + delta)
        st.bid_qty[9 - i] = max(1, st.bid_qty[9 - i] - delta)
        return Trade(st.info.code, price, volume)

    def step_us(self, symbol: str) -> UsState:
        st = self.us[symbol]
        move = self.rng.choice((-2, -1, 0, 0, 1, 2)) * 0.0001 * st.price
        st.price = max(0.01, round(st.price + move, st.info.decimals))
        st.high = max(st.high, st.price)
        st.low = min(st.low, st.price)
        st.last_vol = self.rng.choice((1, 2, 5, 10, 20, 50, 100))
        st.tvol += st.last_vol
        st.tamt += st.price * st.last_vol
        if move >= 0:
            st.buy_volume += st.last_vol
        else:
            st.sell_volume += st.last_vol
        st.bid_vol = self.rng.randint(1, 500)
        st.ask_vol = self.rng.randint(1, 500)
        return st

    # --- realtime records (field order: kis.broker.fields) -----------------------------------------

    def h0stcnt0(self, code: str) -> str:
        st = self.krx[code]
        p = st.price
        diff = p - st.base
        ask1, bid1 = st.ask1, st.bid1
        sv, bv, av = st.sell_volume, st.buy_volume, st.acml_vol
        cttr = bv / sv * 100 if sv else 0.0
        shnu = bv / av if av else 0.0
        wavg = st.acml_amount / av if av else float(p)
        do, dh, dl = p - st.open, p - st.high, p - st.low
        ask_q, bid_q = st.ask_qty, st.bid_qty
        # One f-string: this is the hot path of every realtime benchmark.
        return (
            f"{code}^{self.hhmmss}^{p}^{_sign(diff, p, st.upper, st.lower)}^{diff}^{diff / st.base * 100:.2f}^"
            f"{wavg:.2f}^{st.open}^{st.high}^{st.low}^{ask1}^{bid1}^{st.last_vol}^{av}^{st.acml_amount}^"
            f"{st.sell_count}^{st.buy_count}^{st.buy_count - st.sell_count}^{cttr:.2f}^{sv}^{bv}^"
            f"{st.last_side}^{shnu:.2f}^0.00^{st.open_hour}^{_sign(do, p)}^{do}^{st.high_hour}^"
            f"{_sign(dh, p)}^{dh}^{st.low_hour}^{_sign(dl, p)}^{dl}^{self.ymd}^20^N^{ask_q[0]}^{bid_q[0]}^"
            f"{sum(ask_q)}^{sum(bid_q)}^{av / st.info.listed_shares * 100:.2f}^0^0.00^0^^{st.open}"
        )

    def h0stasp0(self, code: str) -> str:
        st = self.krx[code]
        asks, bids = _book_prices(st)
        return "^".join((
            code, self.hhmmss, "0", *map(str, asks), *map(str, bids),
            *map(str, st.ask_qty), *map(str, st.bid_qty), str(sum(st.ask_qty)), str(sum(st.bid_qty)),
            "0", "0", "0", "0", "0", str(-st.base), "5", "-100.00", str(st.acml_vol), "0", "0", "0", "0", "0",
        ))

    def hdfscnt0(self, symbol: str) -> str:
        st = self.us[symbol]
        d = st.info.decimals
        now_kst = self.clock.now()
        # Local (New York) time: KST - 14 h in northern-hemisphere winter, -13 h in summer; the
        # exchange calendar is overkill for a display field, zoneinfo is exact.
        from zoneinfo import ZoneInfo

        local = now_kst.astimezone(ZoneInfo("America/New_York"))
        diff = st.price - st.base
        rate = diff / st.base * 100
        strn = st.buy_volume / st.sell_volume * 100 if st.sell_volume else 100.0
        return "^".join((
            f"D{st.info.exchange}{symbol}", symbol, str(d), local.strftime("%Y%m%d"), local.strftime("%Y%m%d"),
            local.strftime("%H%M%S"), now_kst.strftime("%Y%m%d"), now_kst.strftime("%H%M%S"),
            f"{st.open:.{d}f}", f"{st.high:.{d}f}", f"{st.low:.{d}f}", f"{st.price:.{d}f}",
            _sign(diff, st.price), f"{abs(diff):.{d}f}", f"{rate:+.2f}", f"{st.price - 0.01:.{d}f}",
            f"{st.price + 0.01:.{d}f}", str(st.bid_vol), str(st.ask_vol), str(st.last_vol), str(st.tvol),
            f"{st.tamt:.0f}", str(st.sell_volume), str(st.buy_volume), f"{strn:.2f}", "1",
        ))

    # --- REST outputs ---------------------------------------------------------------------------

    def inquire_price(self, code: str) -> dict[str, str]:
        st = self.krx[code]
        info = st.info
        p = st.price
        w52h, w52l = max(st.high, round_to_tick(st.base * 1.2)), min(st.low, round_to_tick(st.base * 0.8))
        today = self.clock.now().strftime("%Y%m%d")
        values = {
            "iscd_stat_cls_code": "55", "marg_rate": "20.00", "rprs_mrkt_kor_name": info.market,
            "new_hgpr_lwpr_cls_code": "", "bstp_kor_isnm": info.sector, "temp_stop_yn": "N",
            "oprc_rang_cont_yn": "N", "clpr_rang_cont_yn": "N", "crdt_able_yn": "Y",
            "grmn_rate_cls_code": "40", "elw_pblc_yn": "Y", "stck_prpr": str(p), "prdy_vrss": str(st.diff),
            "prdy_vrss_sign": _sign(st.diff, p, st.upper, st.lower), "prdy_ctrt": st.rate,
            "acml_tr_pbmn": str(st.acml_amount), "acml_vol": str(st.acml_vol), "prdy_vrss_vol_rate": "0.00",
            "stck_oprc": str(st.open), "stck_hgpr": str(st.high), "stck_lwpr": str(st.low),
            "stck_mxpr": str(st.upper), "stck_llam": str(st.lower), "stck_sdpr": str(st.base),
            "wghn_avrg_stck_prc": st.wavg, "hts_frgn_ehrt": "50.12", "frgn_ntby_qty": "0", "pgtr_ntby_qty": "0",
            "pvt_scnd_dmrs_prc": str(step_ticks(st.base, 4)), "pvt_frst_dmrs_prc": str(step_ticks(st.base, 2)),
            "pvt_pont_val": str(st.base), "pvt_frst_dmsp_prc": str(step_ticks(st.base, -2)),
            "pvt_scnd_dmsp_prc": str(step_ticks(st.base, -4)), "dmrs_val": str(step_ticks(st.base, 1)),
            "dmsp_val": str(step_ticks(st.base, -1)), "cpfn": "7780", "rstc_wdth_prc": str(st.upper - st.base),
            "stck_fcam": "100", "stck_sspr": str(round_to_tick(p * 0.7, "down")),
            "aspr_unit": str(tick_size(p)), "hts_deal_qty_unit_val": "1", "lstn_stcn": str(info.listed_shares),
            "hts_avls": str(p * info.listed_shares // 100_000_000), "per": "12.50", "pbr": "1.20",
            "stac_month": "12", "vol_tnrt": f"{st.acml_vol / info.listed_shares * 100:.2f}",
            "eps": str(max(1, p // 12)), "bps": str(max(1, p * 5 // 6)), "d250_hgpr": str(w52h),
            "d250_hgpr_date": today, "d250_hgpr_vrss_prpr_rate": f"{(p - w52h) / w52h * 100:.2f}",
            "d250_lwpr": str(w52l), "d250_lwpr_date": today,
            "d250_lwpr_vrss_prpr_rate": f"{(p - w52l) / w52l * 100:.2f}", "stck_dryy_hgpr": str(w52h),
            "dryy_hgpr_vrss_prpr_rate": f"{(p - w52h) / w52h * 100:.2f}", "dryy_hgpr_date": today,
            "stck_dryy_lwpr": str(w52l), "dryy_lwpr_vrss_prpr_rate": f"{(p - w52l) / w52l * 100:.2f}",
            "dryy_lwpr_date": today, "w52_hgpr": str(w52h), "w52_hgpr_vrss_prpr_ctrt": f"{(p - w52h) / w52h * 100:.2f}",
            "w52_hgpr_date": today, "w52_lwpr": str(w52l), "w52_lwpr_vrss_prpr_ctrt": f"{(p - w52l) / w52l * 100:.2f}",
            "w52_lwpr_date": today, "whol_loan_rmnd_rate": "0.10", "ssts_yn": "Y", "stck_shrn_iscd": info.code,
            "fcam_cnnm": "100", "cpfn_cnnm": "7,780 억", "apprch_rate": "0.00", "frgn_hldn_qty": "0",
            "vi_cls_code": "N", "ovtm_vi_cls_code": "N", "last_ssts_cntg_qty": "0", "invt_caful_yn": "N",
            "mrkt_warn_cls_code": "00", "short_over_yn": "N", "sltr_yn": "N", "mang_issu_cls_code": "N",
        }
        return values

    def overseas_price(self, symbol: str) -> dict[str, str]:
        st = self.us[symbol]
        d = st.info.decimals
        diff = st.price - st.base
        return {
            "rsym": f"D{st.info.exchange}{symbol}", "zdiv": str(d), "base": f"{st.base:.{d}f}",
            "pvol": "0", "last": f"{st.price:.{d}f}", "sign": _sign(diff, st.price), "diff": f"{abs(diff):.{d}f}",
            "rate": f"{diff / st.base * 100:+.2f}", "tvol": str(st.tvol), "tamt": f"{st.tamt:.0f}", "ordy": "매수불가",
        }

    def asking_price(self, code: str) -> tuple[dict[str, str], dict[str, str]]:
        """inquire-asking-price-exp-ccn: output1 the book H0STASP0 carries, output2 the expected execution.

        Outside call auctions there is no expected price: 0, with the contrast against the previous close
        (-base, sign 5, -100.00), exactly as the H0STASP0 record of the same moment.
        """
        st = self.krx[code]
        asks, bids = _book_prices(st)
        total_ask, total_bid = sum(st.ask_qty), sum(st.bid_qty)
        no_change = ("0",) * 10
        book = dict(zip(F.ASKING_PRICE_OUTPUT1, (
            self.hhmmss, *map(str, asks), *map(str, bids), *map(str, st.ask_qty), *map(str, st.bid_qty),
            *no_change, *no_change, str(total_ask), str(total_bid), "0", "0", "0", "0", "0", "0",
            str(total_bid - total_ask), "20",
        ), strict=True))
        expected = dict(zip(F.ASKING_PRICE_OUTPUT2, (
            "112", str(st.price), str(st.open), str(st.high), str(st.low), str(st.base), "0", "5",
            str(-st.base), "-100.00", "0", code, "N",
        ), strict=True))
        return book, expected

    def search_info(self, code: str) -> dict[str, str]:
        """search-info (CTPF1604R) of a KRX symbol; pdno is the 12-character internal number."""
        info = self.krx[code].info
        full = info.name if is_preferred(code) else f"{info.name}보통주"
        return dict(zip(F.SEARCH_INFO_OUTPUT, (
            f"00000A{code}", "300", full, full, info.name, info.name, info.name, info.name, krx_isin(code),
            code, "", "", "101210", "주권", "", "", "", "1012", "주식", LISTING_DATE,
        ), strict=True))

    def search_info_us(self, symbol: str) -> dict[str, str]:
        info = self.us[symbol].info
        return dict(zip(F.SEARCH_INFO_OUTPUT, (
            symbol, US_PRDT_TYPE_CD[info.exchange], info.name, info.name, info.name, info.name, info.name,
            info.name, "", symbol, "", "", "101210", "해외주식", "", "", "06", "1012", "해외주식", "",
        ), strict=True))

    def search_stock_info(self, code: str) -> dict[str, str]:
        """search-stock-info (CTPF1002R): market, listed shares, names and prices of a KRX symbol."""
        st = self.krx[code]
        info = st.info
        kosdaq = info.market == "KOSDAQ"
        preferred = is_preferred(code)
        full = info.name if preferred else f"{info.name}보통주"
        today = self.clock.now().strftime("%Y%m%d")
        substitute = str(round_to_tick(st.base * 0.7, "down"))
        par = 100  # as inquire-price stck_fcam
        return dict(zip(F.SEARCH_STOCK_INFO_OUTPUT, (
            f"00000A{code}", "300", "KSQ" if kosdaq else "STK", "ST", "03" if kosdaq else "02", "12",
            str(info.listed_shares), "0", str(info.listed_shares * par), str(par), "0",
            "Y" if info.market == "KOSPI200" else "N", "" if kosdaq else LISTING_DATE, "",
            LISTING_DATE if kosdaq else "", "", "", "", "", "0", "N", "", "", "", "201" if preferred else "101",
            "", "", "", "0", full, full, info.name, krx_isin(code), info.name, info.name, info.name, "Y", "00",
            "", "", "1", substitute, substitute, today, "N", "N", str(st.price), str(st.base), today, "", "",
            "", info.sector, info.sector, "", "", "Y", code[:5], "0", "N", "01", "0.00000000", "", "", "", "Y",
            "N",
        ), strict=True))

    def price_detail(self, symbol: str) -> dict[str, str]:
        """Overseas price-detail (HHDFS76200200), the same state as overseas_price and HDFSCNT0.

        Like ``price``: ``last``/``base`` at the symbol's decimals, won-converted difference unsigned and
        its rate with an explicit sign, ``t_xsgn`` the 1–5 sign of the day's move (python-kis reads it as
        the quote's sign); US symbols have no daily limits (uplp/dnlp 0).
        """
        st = self.us[symbol]
        d = st.info.decimals
        today = self.clock.now().strftime("%Y%m%d")
        high52, low52 = max(st.high, st.base * 1.2), min(st.low, st.base * 0.8)
        won_today, won_prev = round(st.price * USD_KRW), round(st.base * USD_KRW)
        won_diff = won_today - won_prev
        rate = f"{USD_KRW:.2f}"
        return dict(zip(F.OVERSEAS_PRICE_DETAIL_OUTPUT, (
            f"D{st.info.exchange}{symbol}", "0", f"{st.open:.{d}f}", f"{st.high:.{d}f}", f"{st.low:.{d}f}",
            f"{st.price:.{d}f}", f"{st.base:.{d}f}", "0", "0", "0", "0", f"{high52:.{d}f}", today,
            f"{low52:.{d}f}", today, "30.00", "10.00", f"{st.price / 30:.{d}f}", f"{st.price / 10:.{d}f}", "0",
            "0", "USD", str(d), "1", str(won_today), str(abs(won_diff)), f"{won_diff / won_prev * 100:+.2f}",
            str(won_prev), "0", "+0.00", rate, rate, _sign(st.price - st.base, st.price), "3", "매매 가능",
            f"{0.01:.{d}f}", "", "0", str(st.tvol), f"{st.tamt:.0f}", "",
        ), strict=True))
