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

KR_SYMBOL = re.compile(r"^[0-9][0-9A-Z]{5}$")
US_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,11}$")
US_EXCHANGES = {"NAS", "NYS", "AMS"}


@dataclass(slots=True)
class Quote:
    symbol: str
    market: str  # KR / US
    price: float
    change: float
    change_rate: float
    sign: str
    open: float
    high: float
    low: float
    volume: int
    ask: float | None
    bid: float | None
    tick_time: str  # HHMMSS (KST for KR, local for US) as KIS sends it
    trade_date: str
    received_mono: float
    received_at: datetime
    source: str  # kis-ws / kis-rest

    def as_dict(self, now_mono: float, market_open: bool) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "market": self.market,
            "source": self.source,
            "price": self.price,
            "change": self.change,
            "change_rate": self.change_rate,
            "change_sign": self.sign,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "volume": self.volume,
            "ask": self.ask,
            "bid": self.bid,
            "trade_date": self.trade_date,
            "tick_time": self.tick_time,
            "timestamp": self.received_at.isoformat(),
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
    """Latest realtime quote per symbol. Hot path: one dict store per record."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.quotes: dict[str, Quote] = {}
        self.listeners: list[Callable[[Quote], None]] = []
        r = RealtimeParser()
        self._kr = r.index(T.RT_PRICE_KR)
        self._us = r.index(T.RT_PRICE_US)

    def apply(self, frame: ParsedFrame) -> None:
        now_mono = self.clock.monotonic()
        now = self.clock.now()
        if frame.tr_id == T.RT_PRICE_KR:
            i = self._kr
            p, sg, d, r, o, h, lo, a, b, v, t, dt = (
                i["STCK_PRPR"], i["PRDY_VRSS_SIGN"], i["PRDY_VRSS"], i["PRDY_CTRT"], i["STCK_OPRC"],
                i["STCK_HGPR"], i["STCK_LWPR"], i["ASKP1"], i["BIDP1"], i["ACML_VOL"], i["STCK_CNTG_HOUR"],
                i["BSOP_DATE"])
            sym_i = i["MKSC_SHRN_ISCD"]
            for rec in frame.records:
                q = Quote(rec[sym_i], "KR", _num(rec[p]), _num(rec[d]), _num(rec[r]), rec[sg], _num(rec[o]),
                          _num(rec[h]), _num(rec[lo]), _int(rec[v]), _num(rec[a]), _num(rec[b]), rec[t], rec[dt],
                          now_mono, now, "kis-ws")
                self.quotes[q.symbol] = q
                for listener in self.listeners:
                    listener(q)
        elif frame.tr_id == T.RT_PRICE_US:
            i = self._us
            for rec in frame.records:
                diff = _num(rec[i["DIFF"]])
                if rec[i["SIGN"]] in ("4", "5"):
                    diff = -diff
                q = Quote(rec[i["SYMB"]], "US", _num(rec[i["LAST"]]), diff, _num(rec[i["RATE"]]), rec[i["SIGN"]],
                          _num(rec[i["OPEN"]]), _num(rec[i["HIGH"]]), _num(rec[i["LOW"]]), _int(rec[i["TVOL"]]),
                          _num(rec[i["PASK"]]), _num(rec[i["PBID"]]), rec[i["XHMS"]], rec[i["XYMD"]],
                          now_mono, now, "kis-ws")
                self.quotes[q.symbol] = q
                for listener in self.listeners:
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
        s = symbol.strip().upper()
        if KR_SYMBOL.match(s):
            return "KR", s
        if US_SYMBOL.match(s):
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
        q = await self._rest_quote(market, sym, exchange)
        self.metrics.rest_fallbacks += 1
        return q.as_dict(self.clock.monotonic(), market_open)

    def _touch(self, market: str, sym: str, exchange: str) -> bool:
        """Make sure the symbol streams (on demand, LRU within the slot cap). True if it was just added."""
        if self.ws is None:
            return False
        key = (T.RT_PRICE_KR, sym) if market == "KR" else (T.RT_PRICE_US, f"D{exchange}{sym}")
        new = key not in self.ws.slots
        return self.ws.want(*key) and new

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
        if market == "KR":
            return Quote(sym, "KR", _num(out.get("stck_prpr", "0")), _num(out.get("prdy_vrss", "0")),
                         _num(out.get("prdy_ctrt", "0")), str(out.get("prdy_vrss_sign", "")),
                         _num(out.get("stck_oprc", "0")), _num(out.get("stck_hgpr", "0")),
                         _num(out.get("stck_lwpr", "0")), _int(out.get("acml_vol", "0")), None, None,
                         now.astimezone(KST).strftime("%H%M%S"), now.astimezone(KST).strftime("%Y%m%d"),
                         self.clock.monotonic(), now, "kis-rest")
        diff = _num(out.get("diff", "0"))
        if str(out.get("sign", "")) in ("4", "5"):
            diff = -diff
        last = _num(out.get("last", "0"))
        return Quote(sym, "US", last, diff, _num(out.get("rate", "0")), str(out.get("sign", "")), last, last, last,
                     _int(out.get("tvol", "0")), None, None, now.strftime("%H%M%S"), now.strftime("%Y%m%d"),
                     self.clock.monotonic(), now, "kis-rest")
