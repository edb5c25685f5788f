"""The simulator's state and its market clock: one object shared by the REST and WS servers."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kis.aio import cancel_and_wait
from kis.clock import Clock, OffsetClock, krx_is_open, us_is_open
from kis.logs import get_logger
from kis.sim.auth import AuthRegistry
from kis.sim.exchange import Exchange
from kis.sim.faults import Faults
from kis.sim.market import Market

log = get_logger("kis.sim")

LIVE_RATE_PER_S = 20
PAPER_RATE_PER_S = 2


@dataclass
class SimConfig:
    paper: bool = False
    seed: int = 0
    rate_limit_per_s: int | None = None  # None: 20/s live, 2/s paper
    session_mode: str = "always"  # "always" open, or "krx" to follow KRX/NYSE hours on the sim clock
    starting_cash: int = 100_000_000
    credentials_file: str | Path | None = None
    token_min_interval_s: float = 60.0
    pingpong_interval_s: float = 10.0
    tick_interval_s: float = 0.25
    burst: int = 0  # records per subscribed symbol per tick; 0 = mostly 1, sometimes a bundle of 2–4
    fill_liquidity: int = 500  # shares a single market step can fill
    max_registrations: int = 41
    faults: Faults = field(default_factory=Faults)

    @property
    def rate_limit(self) -> int:
        if self.rate_limit_per_s is not None:
            return self.rate_limit_per_s
        return PAPER_RATE_PER_S if self.paper else LIVE_RATE_PER_S


class RateLimiter:
    """At most ``limit`` accepted calls in any sliding one-second window, per app key."""

    def __init__(self, clock: Clock, limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self._calls: dict[str, deque[float]] = {}

    def allow(self, app_key: str) -> bool:
        now = self.clock.monotonic()
        calls = self._calls.setdefault(app_key, deque())
        while calls and now - calls[0] >= 1.0:
            calls.popleft()
        if len(calls) >= self.limit:
            return False
        calls.append(now)
        return True


TickListener = Callable[[str, str], None]  # (market "KR"/"US", code) after each simulated trade
FlushListener = Callable[[], None]  # after each market step, to send what the ticks produced


class Simulator:
    def __init__(self, config: SimConfig | None = None, clock: OffsetClock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = clock or OffsetClock()
        self.faults = self.config.faults
        self.market = Market(self.clock, self.config.seed)
        self.exchange = Exchange(self.market, self.config.starting_cash, self.config.fill_liquidity)
        self.auth = AuthRegistry(self.clock, self.config.credentials_file, self.config.token_min_interval_s)
        self.limiter = RateLimiter(self.clock, self.config.rate_limit)
        self.storm_until = 0.0
        # Broker-call accounting, read by tests through the admin API.
        self.rest_calls: Counter[str] = Counter()  # by tr_id (or path for oauth)
        self.rest_errors: Counter[str] = Counter()  # by msg_cd / error_code
        self.interest: Counter[tuple[str, str]] = Counter()  # (KR|US, code) -> subscriber count
        self.tick_listeners: list[TickListener] = []
        self.flush_listeners: list[FlushListener] = []
        self._task: asyncio.Task[None] | None = None
        self._feed_changed = asyncio.Event()
        self._day: str | None = None  # the trading date the open orders belong to

    # --- sessions (market hours on the sim clock) ----------------------------------------------------

    def kr_open(self) -> bool:
        return self.config.session_mode == "always" or krx_is_open(self.clock.now())

    def us_open(self) -> bool:
        return self.config.session_mode == "always" or us_is_open(self.clock.now())

    # --- faults ----------------------------------------------------------------------------------------

    def start_storm(self, seconds: float) -> None:
        self.storm_until = self.clock.monotonic() + seconds

    def in_storm(self) -> bool:
        return self.clock.monotonic() < self.storm_until

    # --- the market loop -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.faults.rate_limit_storm_s > 0:
            self.start_storm(self.faults.rate_limit_storm_s)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sim-market")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                self.step()
            except Exception:  # a bug in one step must not stop the market
                log.exception("sim_market_step_failed")
            await self._until_next_step()

    async def _until_next_step(self) -> None:
        # A feed change restarts the wait at the new interval: slowing the feed down takes effect at once,
        # with no step left over from the old interval.
        seconds = self.config.tick_interval_s
        while True:
            self._feed_changed.clear()
            try:
                await asyncio.wait_for(self._feed_changed.wait(), seconds)
            except TimeoutError:
                return
            seconds = self.config.tick_interval_s

    def roll_day(self) -> None:
        """On the first look at a new date, the previous days' open orders end (KRX day orders)."""
        today = self.clock.now().strftime("%Y%m%d")
        if today != self._day:
            if self._day is not None:
                self.exchange.end_day(today)
            self._day = today

    def feed_changed(self) -> None:
        self._feed_changed.set()

    def _burst(self) -> int:
        if self.config.burst > 0:
            return self.config.burst
        r = self.market.rng.random()
        return 1 if r < 0.85 else self.market.rng.randint(2, 4)

    def step(self) -> None:
        """One market step: every watched symbol trades, resting orders match, listeners hear it."""
        kr_open, us_open = self.kr_open(), self.us_open()
        self.market.mark_time()
        self.roll_day()
        active_kr = {code for (mkt, code), n in self.interest.items() if mkt == "KR" and n > 0}
        active_kr.update(code for code, book in self.exchange.open_by_code.items() if book)
        if kr_open:
            for code in active_kr:
                if code not in self.market.krx:
                    continue
                for _ in range(self._burst()):
                    trade = self.market.step_krx(code)
                    self.exchange.on_trade(trade)
                    for listener in self.tick_listeners:
                        listener("KR", code)
        if us_open:
            for (mkt, sym), n in list(self.interest.items()):
                if mkt == "US" and n > 0 and sym in self.market.us:
                    for _ in range(self._burst()):
                        self.market.step_us(sym)
                        for listener in self.tick_listeners:
                            listener("US", sym)
        for flush in self.flush_listeners:
            flush()

    def refresh_quote(self, code: str) -> None:
        """A REST quote of a symbol nobody watches still moves, one trade per query at most per tick."""
        if self.interest.get(("KR", code), 0) == 0 and self.kr_open():
            self.market.mark_time()
            trade = self.market.step_krx(code)
            self.exchange.on_trade(trade)
