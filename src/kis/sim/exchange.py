"""Accounts, orders and matching: the simulated broker back office.

Cash and holdings move only on fills; buys reserve cash (market buys at the upper limit price, as KIS
does) and sells reserve holdings, so a second order cannot spend what the first already committed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kis.sim.market import Market, Trade

BRANCH = "06010"  # KRX_FWDG_ORD_ORGNO: 5-digit 한국거래소전송주문조직번호
SELL, BUY = "01", "02"
LIMIT, MARKET = "00", "01"
MARKET_LIKE = {"01", "03", "04", "13", "14", "15", "16"}
SUPPORTED_DVSN = {"00", "01", "03", "04", "11", "12", "13", "14", "15", "16"}


class OrderReject(Exception):
    """A business reject: answered with rt_cd "7" and the KIS message code."""

    def __init__(self, msg_cd: str, msg1: str) -> None:
        super().__init__(msg1)
        self.msg_cd = msg_cd
        self.msg1 = msg1


@dataclass
class Holding:
    code: str
    qty: int = 0
    cost: int = 0  # purchase amount of the qty held (pchs_amt)
    reserved: int = 0  # qty committed to open sell orders
    today_buy: int = 0
    today_sell: int = 0

    @property
    def sellable(self) -> int:
        return self.qty - self.reserved


@dataclass
class Account:
    cano: str
    prdt: str
    name: str
    cash: int
    reserved_cash: int = 0
    today_buy_amt: int = 0
    today_sell_amt: int = 0
    holdings: dict[str, Holding] = field(default_factory=dict)
    # Every app key that has used the account: execution notices go to each of them (KIS sends notices
    # per account/HTS ID, not per the app key that placed the order).
    app_keys: set[str] = field(default_factory=set)

    @property
    def number(self) -> str:
        return self.cano + self.prdt

    @property
    def orderable_cash(self) -> int:
        return self.cash - self.reserved_cash


@dataclass
class Order:
    odno: str
    account: Account
    code: str
    side: str  # 01 sell / 02 buy
    dvsn: str
    qty: int
    price: int  # 0 for market-like orders
    ord_dt: str
    ord_tmd: str
    orgn_odno: str = ""
    rvse_cncl: str = "0"  # 0 new, 1 modify, 2 cancel (the RCTF_CLS of this order record)
    filled: int = 0
    filled_amount: int = 0
    cancelled: int = 0  # qty cancelled or moved to a modifying order
    expired: int = 0  # qty still open when its trading day ended (KRX day orders do not carry over)
    reserved_cash: int = 0

    @property
    def remaining(self) -> int:
        return self.qty - self.filled - self.cancelled - self.expired

    @property
    def is_open(self) -> bool:
        return self.rvse_cncl != "2" and self.remaining > 0

    @property
    def avg_price(self) -> float:
        return self.filled_amount / self.filled if self.filled else 0.0


@dataclass(frozen=True)
class Notice:
    """One execution-notice event (H0STCNI0/9) for one app key; the WS server renders it per subscriber.

    An order event is emitted once per app key of the account (``Account.app_keys``), so the WS server
    only routes by ``app_key``; ``order.account`` carries the account number and name.
    """

    app_key: str
    order: Order
    kind: str  # "ack" (CNTG_YN 1) or "fill" (CNTG_YN 2)
    qty: int
    price: int
    hhmmss: str
    refused: bool = False


NoticeListener = Callable[[Notice], None]


class Exchange:
    def __init__(self, market: Market, starting_cash: int, fill_liquidity: int = 500) -> None:
        self.market = market
        self.starting_cash = starting_cash
        self.fill_liquidity = fill_liquidity
        self.accounts: dict[tuple[str, str], Account] = {}
        self.orders: dict[str, Order] = {}
        self.open_by_code: dict[str, list[Order]] = {}
        self.listeners: list[NoticeListener] = []
        self._odno = itertools.count(1)

    # --- accounts --------------------------------------------------------------------------------

    def account(self, cano: str, prdt: str, app_key: str) -> Account:
        """The account, opened with starting cash on first use; ``app_key`` joins its notice recipients."""
        acct = self.accounts.get((cano, prdt))
        if acct is None:
            acct = Account(cano, prdt, name="모의계좌", cash=self.starting_cash)
            self.accounts[(cano, prdt)] = acct
        acct.app_keys.add(app_key)
        return acct

    # --- orders -------------------------------------------------------------------------------------

    def _next_odno(self) -> str:
        return f"{next(self._odno):010d}"

    def place(self, acct: Account, code: str, side: str, dvsn: str, qty: int, price: int,
              now: datetime) -> Order:
        st = self.market.krx[code]
        market_like = dvsn in MARKET_LIKE
        if not market_like and not (st.lower <= price <= st.upper):
            raise OrderReject("APBK0563", "주문단가가 상하한가 범위를 벗어났습니다.")
        if side == BUY:
            need = qty * (st.upper if market_like else price)
            if need > acct.orderable_cash:
                raise OrderReject("APBK0952", "주문가능금액을 초과 했습니다")
        else:
            h = acct.holdings.get(code)
            if h is None or h.sellable < qty:
                raise OrderReject("APBK0400", "주문가능수량을 초과하였습니다.")
        order = Order(self._next_odno(), acct, code, side, dvsn, qty, 0 if market_like else price,
                      now.strftime("%Y%m%d"), now.strftime("%H%M%S"))
        self._reserve(order, st.upper if market_like else price)
        self._accept(order)
        self._match_new(order)
        return order

    def _reserve(self, order: Order, unit: int) -> None:
        if order.side == BUY:
            order.reserved_cash = order.remaining * unit
            order.account.reserved_cash += order.reserved_cash
        else:
            order.account.holdings[order.code].reserved += order.remaining

    def _accept(self, order: Order) -> None:
        self.orders[order.odno] = order
        self.open_by_code.setdefault(order.code, []).append(order)
        self._notify(order, "ack", order.qty, order.price, order.ord_tmd)

    def find(self, acct: Account, odno: str) -> Order | None:
        order = self.orders.get(odno.strip().zfill(10)) if odno.strip().isdigit() else None
        return order if order is not None and order.account is acct else None

    def modify(self, orig: Order, qty: int | None, price: int, dvsn: str, now: datetime) -> Order:
        """Replace the remaining quantity (or part of it) with a new order at a new price."""
        if not orig.is_open:
            raise OrderReject("APBK0918", "정정/취소할 수량이 없습니다.")
        move = orig.remaining if qty is None else qty
        if move <= 0 or move > orig.remaining:
            raise OrderReject("APBK0917", "정정수량이 주문가능수량을 초과하였습니다.")
        st = self.market.krx[orig.code]
        market_like = dvsn in MARKET_LIKE
        if not market_like and not (st.lower <= price <= st.upper):
            raise OrderReject("APBK0563", "주문단가가 상하한가 범위를 벗어났습니다.")
        self._release(orig, move)
        orig.cancelled += move
        new = Order(self._next_odno(), orig.account, orig.code, orig.side, dvsn, move,
                    0 if market_like else price, now.strftime("%Y%m%d"), now.strftime("%H%M%S"),
                    orgn_odno=orig.odno, rvse_cncl="1")
        if orig.side == BUY:
            need = move * (st.upper if market_like else price)
            if need > orig.account.orderable_cash:
                # Undo: the modify is rejected as a whole.
                orig.cancelled -= move
                self._reserve_back(orig, move)
                raise OrderReject("APBK0952", "주문가능금액을 초과 했습니다")
        self._prune(orig)
        self._reserve(new, st.upper if market_like else price)
        self._accept(new)
        self._match_new(new)
        return new

    def cancel(self, orig: Order, qty: int | None, now: datetime) -> Order:
        if not orig.is_open:
            raise OrderReject("APBK0918", "정정/취소할 수량이 없습니다.")
        move = orig.remaining if qty is None else min(qty, orig.remaining)
        if move <= 0:
            raise OrderReject("APBK0918", "정정/취소할 수량이 없습니다.")
        self._release(orig, move)
        orig.cancelled += move
        self._prune(orig)
        record = Order(self._next_odno(), orig.account, orig.code, orig.side, orig.dvsn, move, orig.price,
                       now.strftime("%Y%m%d"), now.strftime("%H%M%S"), orgn_odno=orig.odno, rvse_cncl="2")
        self.orders[record.odno] = record
        self._notify(record, "ack", move, orig.price, record.ord_tmd)
        return record

    def end_day(self, today: str) -> int:
        """Orders placed before ``today`` that are still open end with their day: reservations are released
        and nothing of them fills later. Returns how many ended."""
        ended = 0
        for order in list(self.orders.values()):
            if order.is_open and order.ord_dt < today:
                self._release(order, order.remaining)
                order.expired += order.remaining
                self._prune(order)
                ended += 1
        return ended

    def _release(self, order: Order, qty: int) -> None:
        if order.side == BUY:
            part = order.reserved_cash * qty // max(order.remaining, 1)
            order.reserved_cash -= part
            order.account.reserved_cash -= part
        else:
            order.account.holdings[order.code].reserved -= qty

    def _reserve_back(self, order: Order, qty: int) -> None:
        st = self.market.krx[order.code]
        unit = st.upper if order.dvsn in MARKET_LIKE else order.price
        if order.side == BUY:
            order.reserved_cash += qty * unit
            order.account.reserved_cash += qty * unit
        else:
            order.account.holdings[order.code].reserved += qty

    def _prune(self, order: Order) -> None:
        if not order.is_open:
            book = self.open_by_code.get(order.code, [])
            if order in book:
                book.remove(order)

    # --- matching -----------------------------------------------------------------------------------

    def _match_new(self, order: Order) -> None:
        st = self.market.krx[order.code]
        px = st.ask1 if order.side == BUY else st.bid1
        if self._crosses(order, px):
            self._fill(order, min(order.remaining, self.fill_liquidity), px)

    @staticmethod
    def _crosses(order: Order, price: int) -> bool:
        if order.dvsn in MARKET_LIKE:
            return True
        return price <= order.price if order.side == BUY else price >= order.price

    def on_trade(self, trade: Trade) -> None:
        """Resting orders on this symbol trade against the tape, up to the liquidity of one step."""
        book = self.open_by_code.get(trade.code)
        if not book:
            return
        liquidity = max(self.fill_liquidity, trade.volume)
        for order in list(book):
            if liquidity <= 0:
                break
            if order.is_open and self._crosses(order, trade.price):
                qty = min(order.remaining, liquidity)
                self._fill(order, qty, trade.price)
                liquidity -= qty

    def _fill(self, order: Order, qty: int, price: int) -> None:
        acct = order.account
        amount = qty * price
        if order.side == BUY:
            share = order.reserved_cash * qty // order.remaining
            order.reserved_cash -= share
            acct.reserved_cash -= share
            acct.cash -= amount
            acct.today_buy_amt += amount
            h = acct.holdings.setdefault(order.code, Holding(order.code))
            h.qty += qty
            h.cost += amount
            h.today_buy += qty
        else:
            h = acct.holdings[order.code]
            h.cost -= h.cost * qty // h.qty if h.qty else 0
            h.qty -= qty
            h.reserved -= qty
            h.today_sell += qty
            acct.cash += amount
            acct.today_sell_amt += amount
        order.filled += qty
        order.filled_amount += amount
        self._prune(order)
        hhmmss = self.market.clock.now().strftime("%H%M%S")
        self._notify(order, "fill", qty, price, hhmmss)

    def _notify(self, order: Order, kind: str, qty: int, price: int, hhmmss: str) -> None:
        """One Notice per app key of the order's account (sorted: a stable delivery order)."""
        for app_key in sorted(order.account.app_keys):
            self._emit(Notice(app_key, order, kind, qty, price, hhmmss))

    def _emit(self, notice: Notice) -> None:
        for listener in self.listeners:
            listener(notice)
