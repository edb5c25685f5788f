"""Order validation and risk guards — the same checks for a real order and for ``POST /v1/risk/check``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kis.config import KisEnv, Settings
from kis.gateway.accounts import Account, AccountRegistry
from kis.gateway.errors import ApiError
from kis.gateway.market import MarketSchedule
from kis.krx import is_on_tick, tick_size

SIDES = {"BUY", "SELL"}
TYPES = {"LIMIT", "MARKET"}


@dataclass(frozen=True)
class OrderRequest:
    account: Account
    symbol: str
    side: str
    order_type: str
    qty: int
    price: int | None
    strategy_id: str | None

    def canonical(self) -> dict[str, Any]:
        """What identifies the request for idempotency: same key + same canonical body = same order."""
        return {"account": self.account.number, "symbol": self.symbol, "side": self.side,
                "order_type": self.order_type, "qty": self.qty, "price": self.price, "strategy_id": self.strategy_id}


def _int_field(body: dict[str, Any], name: str, code: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise ApiError(400, code, f"{name} must be a whole number")
    text = str(value).strip()
    try:
        number = float(text) if isinstance(value, float) else int(text)
    except ValueError:
        raise ApiError(400, code, f"{name} must be a whole number") from None
    if isinstance(number, float):
        if not number.is_integer():
            raise ApiError(400, code, f"{name} must be a whole number")
        number = int(number)
    return number


def parse_order(body: Any, accounts: AccountRegistry) -> OrderRequest:
    """Validate an order body into a request; every problem is a 400/404 with its own code."""
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_REQUEST", "body must be a JSON object")
    if "account_id" not in body:
        raise ApiError(400, "INVALID_REQUEST", "account_id is required")
    account = accounts.resolve(str(body["account_id"]))
    symbol = str(body.get("symbol") or "").strip().upper()
    if len(symbol) != 6 or not symbol[0].isdigit() or not symbol.isalnum():
        raise ApiError(400, "INVALID_SYMBOL", "symbol must be a 6-character KRX code, e.g. 005930")
    side = str(body.get("side") or "").strip().upper()
    if side not in SIDES:
        raise ApiError(400, "INVALID_SIDE", "side must be BUY or SELL")
    qty = _int_field(body, "qty", "INVALID_QTY")
    if qty is None or qty < 1:
        raise ApiError(400, "INVALID_QTY", "qty must be a whole number >= 1")
    price = _int_field(body, "price", "INVALID_PRICE")
    raw_type = body.get("order_type")
    order_type = str(raw_type).strip().upper() if raw_type is not None else ("LIMIT" if price is not None else "MARKET")
    if order_type not in TYPES:
        raise ApiError(400, "INVALID_ORDER_TYPE", "order_type must be LIMIT or MARKET")
    if order_type == "LIMIT":
        if price is None:
            raise ApiError(400, "PRICE_REQUIRED_FOR_LIMIT", "a LIMIT order needs a price")
        if price <= 0:
            raise ApiError(400, "INVALID_PRICE", "price must be > 0")
        if not is_on_tick(price):
            raise ApiError(400, "INVALID_PRICE", f"price {price} is not on the KRX tick grid "
                                                 f"(tick {tick_size(price)} at this price)")
    elif price is not None:
        raise ApiError(400, "PRICE_NOT_ALLOWED_FOR_MARKET", "a MARKET order takes no price")
    strategy = body.get("strategy_id")
    if strategy is not None and (not isinstance(strategy, str) or len(strategy) > 100):
        raise ApiError(400, "INVALID_REQUEST", "strategy_id must be a string of at most 100 characters")
    return OrderRequest(account, symbol, side, order_type, qty, price, strategy)


@dataclass(frozen=True)
class RiskLimits:
    max_order_qty: int
    max_order_notional: int
    daily_max_orders: int
    daily_max_notional: int
    live: bool
    live_enabled: bool
    live_allowlist: frozenset[str]

    @classmethod
    def from_settings(cls, s: Settings) -> RiskLimits:
        allow = frozenset(x.strip().replace("-", "") for x in s.kis_live_account_allowlist.split(",") if x.strip())
        return cls(s.kis_max_order_qty, s.kis_max_order_notional, s.kis_daily_max_orders, s.kis_daily_max_notional,
                   live=s.kis_env is KisEnv.LIVE and not s.paper, live_enabled=s.kis_live_trading_enabled,
                   live_allowlist=allow)

    def as_dict(self) -> dict[str, Any]:
        return {"max_order_qty": self.max_order_qty, "max_order_notional": self.max_order_notional,
                "daily_max_orders": self.daily_max_orders, "daily_max_notional": self.daily_max_notional,
                "live": self.live, "live_enabled": self.live_enabled}


PriceLookup = Callable[[str], Awaitable[int]]
SellableLookup = Callable[[Account, str], Awaitable[int]]


class RiskGuard:
    def __init__(self, limits: RiskLimits, schedule: MarketSchedule, reference_price: PriceLookup,
                 sellable: SellableLookup) -> None:
        self.limits = limits
        self.schedule = schedule
        self.reference_price = reference_price
        self.sellable = sellable

    async def notional(self, req: OrderRequest) -> int:
        price = req.price if req.price is not None else await self.reference_price(req.symbol)
        return req.qty * price

    async def check_order(self, req: OrderRequest) -> int:
        """The guards that need no database: live switch, trading window, per-order size. Returns the notional.

        A MARKET order's notional is measured at the live quote, which may cost a KIS call: callers check the
        kill switch first.
        """
        L = self.limits
        if L.live and not (L.live_enabled and req.account.number.replace("-", "") in L.live_allowlist):
            raise ApiError(403, "LIVE_DISABLED", "live trading is disabled for this account "
                                                 "(KIS_LIVE_TRADING_ENABLED and KIS_LIVE_ACCOUNT_ALLOWLIST)")
        if not self.schedule.kr_open():
            raise ApiError(409, "OUT_OF_TRADING_WINDOW", "the KRX market is closed", retryable=True)
        if req.qty > L.max_order_qty:
            raise ApiError(403, "MAX_QTY_EXCEEDED", f"qty {req.qty} exceeds the per-order limit {L.max_order_qty}")
        notional = await self.notional(req)
        if notional > L.max_order_notional:
            raise ApiError(403, "NOTIONAL_LIMIT_EXCEEDED",
                           f"order notional {notional} KRW exceeds the per-order limit {L.max_order_notional}")
        return notional

    def check_daily(self, count: int, spent: int, notional: int) -> None:
        """``count`` orders and ``spent`` KRW already taken today on the account."""
        L = self.limits
        if count + 1 > L.daily_max_orders or spent + notional > L.daily_max_notional:
            raise ApiError(403, "DAILY_LIMIT_EXCEEDED", f"daily limits: {count}/{L.daily_max_orders} orders, "
                                                        f"{spent}/{L.daily_max_notional} KRW used")

    @staticmethod
    def check_holdings(req: OrderRequest, available: int) -> None:
        if req.qty > available:
            raise ApiError(403, "INSUFFICIENT_HOLDINGS", f"sell qty {req.qty} exceeds sellable holdings {available}")
