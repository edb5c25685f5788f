"""The gateway's composition root: every long-lived object is built here, in the app lifespan.

Nothing is a module-level singleton; routes reach these objects through ``app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kis.broker.auth import TokenManager
from kis.broker.pacing import RatePacer, SharedBudget
from kis.broker.realtime import RealtimeParser
from kis.broker.rest import KisRestClient
from kis.broker.token_store import FileTokenStore, MemoryTokenStore, RedisTokenStore, TokenStore, store_key
from kis.broker.ws import KisWsClient, WsConfig
from kis.clock import Clock, SystemClock
from kis.config import KIS_HOSTS, KisEnv, Settings
from kis.gateway.errors import ApiError
from kis.gateway.lease import DbLeaseBackend, LeaseBackend, RedisLeaseBackend, SessionOwnerLease
from kis.gateway.market import MarketSchedule
from kis.gateway.quotes import QuoteCache, QuoteService
from kis.gateway.stream import QuoteFanout
from kis.logs import get_logger
from kis.storage.db import create_engine
from kis.storage.migrate import upgrade_async

log = get_logger("kis.gateway")

SIM_APP_KEY = "SIM" + "0" * 33
SIM_APP_SECRET = "SIMSECRET" + "0" * 171
SIM_ACCOUNT = "12345678-01"
SIM_HTS_ID = "simhtsid"


@dataclass
class KisEndpoint:
    rest_url: str
    ws_url: str
    app_key: str
    app_secret: str
    account_no: str | None
    env: KisEnv
    embedded_sim: bool


class GatewayRuntime:
    def __init__(self, settings: Settings, clock: Clock | None = None, sim_server: Any = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.schedule = MarketSchedule(self.clock, settings.kis_market_override)
        # An already running simulator handed in by `kis up`; otherwise KIS_ENV=sim starts its own.
        self.sim_server = sim_server
        self._owns_sim = sim_server is None
        self.endpoint: KisEndpoint | None = None
        self.engine = None
        self.redis = None
        self.lease: SessionOwnerLease | None = None
        self.tokens: TokenManager | None = None
        self.rest: KisRestClient | None = None
        self.ws: KisWsClient | None = None
        self.parser = RealtimeParser()
        self.cache = QuoteCache(self.clock)
        self.fanout = QuoteFanout(self.cache)
        self.quotes: QuoteService | None = None
        self.config_errors: list[str] = []
        self.trading: Any = None  # kis.gateway.trading.Trading, built in start()
        self._auth_http: httpx.AsyncClient | None = None
        self._warmup: asyncio.Task[None] | None = None

    # --- start / stop ---------------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self.endpoint = await self._endpoint()
        if self.sim_server is not None:
            self.schedule.session = self.sim_server.sim
        self.engine = create_engine(s.kis_db_url)
        await upgrade_async(s.kis_db_url)  # concurrent start-ups take turns (kis.storage.migrations.env)
        if s.kis_redis_url:
            import redis.asyncio as aioredis

            self.redis = aioredis.from_url(s.kis_redis_url)
        ep = self.endpoint
        if ep is None:
            self._start_trading()  # kill switch and audit still work; orders and portfolio say why not
            return
        self._auth_http = httpx.AsyncClient(base_url=ep.rest_url, timeout=10.0)
        store: TokenStore
        if ep.embedded_sim:
            store = MemoryTokenStore()  # the embedded simulator lives and dies with this process
        elif self.redis is not None:
            store = RedisTokenStore(self.redis)
        else:
            store = FileTokenStore(Path(s.kis_state_dir))
        key = store_key(ep.env.value, ep.app_key, ep.rest_url)
        self.tokens = TokenManager(self._auth_http, ep.app_key, ep.app_secret, key, store, self.clock)
        shared = SharedBudget(s.kis_redis_url, f"kis:rest:{key}",
                              int(s.rest_rate_per_s)) if s.kis_redis_url else None
        pacer = RatePacer(s.rest_rate_per_s, self.clock, shared=shared)
        self.rest = KisRestClient(ep.rest_url, ep.app_key, ep.app_secret, self.tokens, pacer)
        self.ws = KisWsClient(WsConfig(url=ep.ws_url), self.tokens.approval_key, self.clock, self.parser,
                              self._on_frame)
        for sym in s.ws_symbols:
            try:
                market, code = QuoteService.classify(sym)
            except ApiError:
                self.config_errors.append(f"KIS_WS_SYMBOLS: {sym!r} is not a symbol")
                continue
            if market == "KR":
                self.ws.pin("H0STCNT0", code)
        self.quotes = QuoteService(self.clock, self.schedule, self.cache, self.rest, self.ws,
                                   fresh_s=s.kis_quote_fresh_s)
        backend: LeaseBackend = RedisLeaseBackend(self.redis) if self.redis is not None else DbLeaseBackend(
            self.engine, self.clock)
        self.lease = SessionOwnerLease(backend, f"kis-session:{key}", self.clock)
        self.lease.on_promote = self._promote
        self.lease.on_demote = self._demote
        self._start_trading()
        await self.lease.start()

    async def stop(self) -> None:
        if self.lease is not None:
            await self.lease.stop()
        await self._cancel_warmup()
        if self.ws is not None:
            await self.ws.stop()
        if self.rest is not None:
            await self.rest.pacer.close()
            await self.rest.aclose()
        if self._auth_http is not None:
            await self._auth_http.aclose()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
        if self.trading is not None:
            await self.trading.orders.intake.close()  # orders already in a transaction finish committing
        if self.engine is not None:
            await self.engine.dispose()
        if self.sim_server is not None and self._owns_sim:
            await self.sim_server.stop()

    def _start_trading(self) -> None:
        """The order path: same KIS session, same lease; fills arrive as execution notices on the WS."""
        from kis.broker import trids as T
        from kis.gateway.trading import Trading

        self.trading = Trading(self)
        self.config_errors.extend(self.trading.accounts.errors)
        if self.ws is None:
            return
        self.ws.on_notice = self.trading.on_notice
        hts_id = self.settings.kis_hts_id or (SIM_HTS_ID if self.endpoint and self.endpoint.embedded_sim else None)
        if hts_id:
            self.ws.pin(T.RT_NOTICE_PAPER if self.settings.paper else T.RT_NOTICE_LIVE, hts_id)
        else:
            log.warning("notices_disabled", reason="KIS_HTS_ID not set: fills come from reconciliation only")

    async def _promote(self) -> None:
        if self.trading is not None:
            await self.trading.promote()
        if self.ws is not None:
            self.ws.start()
        if self.tokens is not None and (self._warmup is None or self._warmup.done()):
            # The owner holds a valid access token from the start (status/readiness report it), without
            # making start-up wait on KIS.
            self._warmup = asyncio.create_task(self._warm_token(), name="kis-token-warmup")

    async def _demote(self) -> None:
        if self.trading is not None:
            await self.trading.demote()
        await self._cancel_warmup()
        if self.ws is not None:
            await self.ws.stop()

    async def _warm_token(self) -> None:
        assert self.tokens is not None
        try:
            await self.tokens.get()
        except Exception as err:  # reported by token_state; the next REST call tries again
            log.warning("token_warmup_failed", error=type(err).__name__, code=getattr(err, "code", None))

    async def _cancel_warmup(self) -> None:
        task, self._warmup = self._warmup, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _on_frame(self, frame) -> None:  # type: ignore[no-untyped-def]
        self.cache.apply(frame)

    async def _endpoint(self) -> KisEndpoint | None:
        s = self.settings
        key = s.kis_app_key.get_secret_value() if s.kis_app_key else None
        secret = s.kis_app_secret.get_secret_value() if s.kis_app_secret else None
        if s.kis_env is KisEnv.SIM and not s.kis_rest_url:
            if self.sim_server is None:
                from kis.sim.engine import SimConfig
                from kis.sim.server import SimServer

                self.sim_server = SimServer(SimConfig(paper=s.paper), host="127.0.0.1")
                await self.sim_server.start()
            return KisEndpoint(self.sim_server.rest_url, self.sim_server.ws_url, key or SIM_APP_KEY,
                               secret or SIM_APP_SECRET, s.account_no or SIM_ACCOUNT, s.kis_env, True)
        default_rest, default_ws = KIS_HOSTS.get(s.kis_env, (None, None))
        rest_url, ws_url = s.kis_rest_url or default_rest, s.kis_ws_url or default_ws
        if not rest_url or not ws_url:
            self.config_errors.append("KIS_REST_URL and KIS_WS_URL are required for KIS_ENV=sim with an "
                                      "external simulator")
            return None
        if not key or not secret:
            self.config_errors.append("KIS_APP_KEY and KIS_APP_SECRET are required")
            return None
        return KisEndpoint(rest_url, ws_url, key, secret, s.account_no, s.kis_env, False)
