"""Quotes: a realtime cache fed by the KIS WebSocket, with a paced, single-flight REST fallback.

Source choice (seed 000): during market hours a fresh WebSocket quote answers as ``kis-ws``; otherwise
(market closed, symbol not streaming yet, or the feed went quiet) a REST quote answers as ``kis-rest``.
REST answers are shared by concurrent callers and reused for a short TTL, so a burst of requests costs
one KIS call per symbol.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kis.broker import trids as T
from kis.broker.errors import KisError, RestRateLimitCooldownError, TokenIssueTooSoonError
from kis.broker.pacing import Priority
from kis.broker.realtime import ParsedFrame, RealtimeParser
from kis.broker.rest import KisRestClient
from kis.broker.ws import KisWsClient
from kis.clock import KST, Clock
from kis.gateway.errors import ApiError
from kis.gateway.market import MarketSchedule
from kis.logs import get_logger

log = get_logger("kis.gateway.quotes")

KR_SYMBOL = re.compile(r"[0-9][0-9A-Z]{5}")  # used with fullmatch: "$" would let a trailing newline in
US_SYMBOL = re.compile(r"[A-Z][A-Z0-9.\-]{0,11}")
US_EXCHANGES = {"NAS", "NYS", "AMS"}


class Layout:
    """Where a TR's record keeps the fields a quote shows; values are converted only when read."""

    __slots__ = ("ask", "bid", "date", "diff", "high", "low", "market", "negative_signs", "open", "price",
                 "rate", "sign", "symbol", "time", "volume")

    def __init__(self, tr_id: str, names: dict[str, str], market: str, negative_signs: tuple[str, ...] = ()) -> None:
        index = RealtimeParser().index(tr_id)
        for slot, name in names.items():
            setattr(self, slot, index[name])
        self.market = market
        self.negative_signs = negative_signs  # US DIFF is unsigned; the sign field says which way


KR_LAYOUT = Layout(T.RT_PRICE_KR, {
    "symbol": "MKSC_SHRN_ISCD", "price": "STCK_PRPR", "sign": "PRDY_VRSS_SIGN", "diff": "PRDY_VRSS",
    "rate": "PRDY_CTRT", "open": "STCK_OPRC", "high": "STCK_HGPR", "low": "STCK_LWPR", "ask": "ASKP1",
    "bid": "BIDP1", "volume": "ACML_VOL", "time": "STCK_CNTG_HOUR", "date": "BSOP_DATE"}, "KR")
US_LAYOUT = Layout(T.RT_PRICE_US, {
    "symbol": "SYMB", "price": "LAST", "sign": "SIGN", "diff": "DIFF", "rate": "RATE", "open": "OPEN",
    "high": "HIGH", "low": "LOW", "ask": "PASK", "bid": "PBID", "volume": "TVOL", "time": "XHMS",
    "date": "XYMD"}, "US", negative_signs=("4", "5"))


class Quote:
    """A quote as received. Realtime quotes keep the raw record and convert on read (hot path: store only)."""

    __slots__ = ("layout", "received_mono", "received_wall", "record", "source", "symbol")

    def __init__(self, symbol: str, layout: Layout, record: list[str], received_mono: float,
                 received_wall: float, source: str) -> None:
        self.symbol = symbol
        self.layout = layout
        self.record = record
        self.received_mono = received_mono
        self.received_wall = received_wall
        self.source = source

    @property
    def price(self) -> float:
        return _num(self.record[self.layout.price])

    def as_dict(self, now_mono: float, market_open: bool) -> dict[str, Any]:
        L, r = self.layout, self.record
        diff = _num(r[L.diff])
        if r[L.sign] in L.negative_signs:
            diff = -abs(diff)
        ask, bid = r[L.ask], r[L.bid]
        return {
            "symbol": self.symbol,
            "market": L.market,
            "source": self.source,
            "price": _num(r[L.price]),
            "change": diff,
            "change_rate": _num(r[L.rate]),
            "change_sign": r[L.sign],
            "open": _num(r[L.open]),
            "high": _num(r[L.high]),
            "low": _num(r[L.low]),
            "volume": _int(r[L.volume]),
            "ask": _num(ask) if ask else None,
            "bid": _num(bid) if bid else None,
            "trade_date": r[L.date],
            "tick_time": r[L.time],
            "timestamp": datetime.fromtimestamp(self.received_wall, KST).isoformat(),
            "age_ms": round((now_mono - self.received_mono) * 1000, 1),
            "market_open": market_open,
        }


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _rest_record(layout: Layout, values: dict[str, str]) -> list[str]:
    """Lay a REST answer out like a realtime record, so one Quote type serves both sources."""
    size = max(getattr(layout, s) for s in Layout.__slots__ if s not in ("market", "negative_signs")) + 1
    rec = [""] * size
    for slot, value in values.items():
        rec[getattr(layout, slot)] = value
    return rec


@dataclass
class QuoteMetrics:
    ws_quote_hits: int = 0
    rest_fallbacks: int = 0  # quote answers served by the REST path
    rest_calls: int = 0  # KIS REST quote calls actually made
    rest_errors: int = 0
    rate_limited: int = 0
    requests: int = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)


class QuoteCache:
    """Latest realtime quote per symbol. Hot path: one object and one dict store per record."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.quotes: dict[str, Quote] = {}
        self.listeners: list[Callable[[Quote], None]] = []

    def apply(self, frame: ParsedFrame) -> None:
        if frame.tr_id == T.RT_PRICE_KR:
            layout = KR_LAYOUT
        elif frame.tr_id == T.RT_PRICE_US:
            layout = US_LAYOUT
        else:
            return
        mono = self.clock.monotonic()
        wall = self.clock.now().timestamp()
        quotes = self.quotes
        sym_i = layout.symbol
        listeners = self.listeners
        for rec in frame.records:
            q = Quote(rec[sym_i], layout, rec, mono, wall, "kis-ws")
            quotes[q.symbol] = q
            if listeners:
                for listener in listeners:
                    listener(q)


class QuoteService:
    def __init__(self, clock: Clock, schedule: MarketSchedule, cache: QuoteCache, rest: KisRestClient | None,
                 ws: KisWsClient | None, *, fresh_s: float = 10.0, rest_ttl_s: float = 1.0,
                 rest_max_wait_s: float = 2.0, subscribe_wait_s: float = 1.5) -> None:
        self.clock = clock
        self.schedule = schedule
        self.cache = cache
        self.rest = rest
        self.ws = ws
        self.fresh_s = fresh_s
        self.rest_ttl_s = rest_ttl_s
        self.rest_max_wait_s = rest_max_wait_s
        self.subscribe_wait_s = subscribe_wait_s
        self.metrics = QuoteMetrics()
        self._rest_cache: dict[str, Quote] = {}
        self._inflight: dict[str, asyncio.Future[Quote]] = {}

    @staticmethod
    def classify(symbol: str) -> tuple[str, str]:
        """Normalise and validate a symbol: ("KR", "005930") or ("US", "AAPL")."""
        s = symbol.strip(" ")  # surrounding spaces only: a control character is malformed
        if s.isascii():  # before upper(): "ﬀ".upper() == "FF"
            s = s.upper()
            if KR_SYMBOL.fullmatch(s):
                return "KR", s
            if US_SYMBOL.fullmatch(s):
                return "US", s
        raise ApiError(422, "INVALID_SYMBOL", f"not a KRX code (6 characters) or a US ticker: {symbol[:20]!r}")

    def is_open(self, market: str) -> bool:
        return self.schedule.kr_open() if market == "KR" else self.schedule.us_open()

    async def get(self, symbol: str, exchange: str = "NAS") -> dict[str, Any]:
        market, sym = self.classify(symbol)
        if market == "US" and exchange not in US_EXCHANGES:
            raise ApiError(422, "INVALID_EXCHANGE", f"exchange must be one of {sorted(US_EXCHANGES)}")
        self.metrics.requests += 1
        market_open = self.is_open(market)
        now_mono = self.clock.monotonic()
        if market_open:
            q = self.cache.quotes.get(sym)
            if q is not None and now_mono - q.received_mono < self.fresh_s:
                self._touch(market, sym, exchange)
                self.metrics.ws_quote_hits += 1
                return q.as_dict(now_mono, True)
            reason = "stale" if q is not None else "not_streaming"
            if self._touch(market, sym, exchange) and q is None and self.ws is not None:
                # A freshly subscribed symbol usually ticks within a moment: wait briefly before REST.
                q = await self._wait_first_tick(sym)
                if q is not None:
                    self.metrics.ws_quote_hits += 1
                    return q.as_dict(self.clock.monotonic(), True)
        else:
            reason = "market_closed"
        self.metrics.fallback_reasons[reason] = self.metrics.fallback_reasons.get(reason, 0) + 1
        try:
            q = await self._rest_quote(market, sym, exchange)
        except ApiError as err:
            if err.code == "SYMBOL_NOT_FOUND":
                self._release(market, sym, exchange)  # an unknown symbol must not keep a realtime slot
            raise
        self.metrics.rest_fallbacks += 1
        return q.as_dict(self.clock.monotonic(), market_open)

    @staticmethod
    def _key(market: str, sym: str, exchange: str) -> tuple[str, str]:
        return (T.RT_PRICE_KR, sym) if market == "KR" else (T.RT_PRICE_US, f"D{exchange}{sym}")

    def _touch(self, market: str, sym: str, exchange: str) -> bool:
        """Make sure the symbol streams (on demand, LRU within the slot cap). True if it was just added."""
        if self.ws is None:
            return False
        key = self._key(market, sym, exchange)
        new = key not in self.ws.slots
        return self.ws.want(*key) and new

    def hold(self, symbols: list[str], exchange: str = "NAS") -> list[str]:
        """Keep ``symbols`` streaming while a stream client reads them (on-demand lookups cannot evict
        them); returns those that got a slot, for ``unhold``."""
        held = []
        for symbol in symbols:
            market, sym = self.classify(symbol)
            if self.ws is not None and self.ws.hold(*self._key(market, sym, exchange)):
                held.append(symbol)
        return held

    def unhold(self, symbols: list[str], exchange: str = "NAS") -> None:
        for symbol in symbols:
            market, sym = self.classify(symbol)
            if self.ws is not None:
                self.ws.unhold(*self._key(market, sym, exchange))

    def _release(self, market: str, sym: str, exchange: str) -> None:
        """Give back an on-demand slot (never a pinned KIS_WS_SYMBOLS one)."""
        if self.ws is not None:
            self.ws.release(*self._key(market, sym, exchange))

    async def _wait_first_tick(self, sym: str) -> Quote | None:
        deadline = self.clock.monotonic() + self.subscribe_wait_s
        while self.clock.monotonic() < deadline:
            q = self.cache.quotes.get(sym)
            if q is not None:
                return q
            await asyncio.sleep(0.02)
        return None

    async def _rest_quote(self, market: str, sym: str, exchange: str) -> Quote:
        now_mono = self.clock.monotonic()
        cached = self._rest_cache.get(sym)
        if cached is not None and now_mono - cached.received_mono < self.rest_ttl_s:
            return cached
        fut = self._inflight.get(sym)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[sym] = fut
        try:
            q = await self._fetch(market, sym, exchange)
            self._rest_cache[sym] = q
            fut.set_result(q)
            return q
        except BaseException as err:
            fut.set_exception(err)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[sym]

    async def _fetch(self, market: str, sym: str, exchange: str) -> Quote:
        if self.rest is None:
            raise ApiError(503, "QUOTE_PROVIDER_UNAVAILABLE", "no KIS REST client is configured", retryable=True)
        self.metrics.rest_calls += 1
        try:
            if market == "KR":
                r = await self.rest.call("GET", T.INQUIRE_PRICE_PATH, T.INQUIRE_PRICE,
                                         params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": sym},
                                         priority=Priority.QUOTE, max_wait=self.rest_max_wait_s)
            else:
                r = await self.rest.call("GET", T.OVERSEAS_PRICE_PATH, T.OVERSEAS_PRICE,
                                         params={"AUTH": "", "EXCD": exchange, "SYMB": sym},
                                         priority=Priority.QUOTE, max_wait=self.rest_max_wait_s)
        except TokenIssueTooSoonError as err:
            self.metrics.rest_errors += 1
            raise ApiError(503, "TOKEN_COOLDOWN", f"waiting for a KIS access token ({err.message})",
                           retryable=True, retry_after=60) from None
        except RestRateLimitCooldownError:
            self.metrics.rate_limited += 1
            raise ApiError(503, "REST_RATE_LIMIT_COOLDOWN", "KIS REST rate limit reached; retry shortly",
                           retryable=True, retry_after=max(1, round(self.rest.pacer.retry_after()))) from None
        except KisError as err:
            self.metrics.rest_errors += 1
            if err.code in ("OPSQ2001",):
                raise ApiError(404, "SYMBOL_NOT_FOUND", f"KIS does not know symbol {sym}") from None
            raise ApiError(502, "KIS_ERROR", f"KIS answered {err.code}", retryable=err.retryable) from None
        out = r.body.get("output") or {}
        now = self.clock.now()
        kst = now.astimezone(KST)
        if market == "KR":
            values = {"symbol": sym, "price": out.get("stck_prpr", "0"), "sign": out.get("prdy_vrss_sign", ""),
                      "diff": out.get("prdy_vrss", "0"), "rate": out.get("prdy_ctrt", "0"),
                      "open": out.get("stck_oprc", "0"), "high": out.get("stck_hgpr", "0"),
                      "low": out.get("stck_lwpr", "0"), "volume": out.get("acml_vol", "0"),
                      "time": kst.strftime("%H%M%S"), "date": kst.strftime("%Y%m%d")}
            layout = KR_LAYOUT
        else:
            last = out.get("last", "0")
            values = {"symbol": sym, "price": last, "sign": out.get("sign", ""), "diff": out.get("diff", "0"),
                      "rate": out.get("rate", "0"), "open": last, "high": last, "low": last,
                      "volume": out.get("tvol", "0"), "time": kst.strftime("%H%M%S"), "date": kst.strftime("%Y%m%d")}
            layout = US_LAYOUT
        return Quote(sym, layout, _rest_record(layout, {k: str(v) for k, v in values.items()}),
                     self.clock.monotonic(), now.timestamp(), "kis-rest")
