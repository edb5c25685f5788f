"""One REST budget per app key, shared by every caller: paced, prioritised, shed before it is exceeded.

KIS counts calls per second per app key and answers the excess with EGW00201 (reference §5.1). The
pacer grants slots at most ``rate × utilisation`` per second, one at a time (no bursts, so a sliding
one-second window on the server never sees more than the rate). Orders are served before quote
fallbacks; a waiter whose ``max_wait`` passes is shed with ``RestRateLimitCooldownError`` instead of
queueing forever. After an EGW00201 the whole budget pauses for a cooldown.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from enum import IntEnum
from typing import Any

from kis.aio import cancel_and_wait
from kis.broker.errors import RestRateLimitCooldownError
from kis.clock import Clock
from kis.logs import get_logger

log = get_logger("kis.broker.pacing")

DEFAULT_UTILISATION = 0.93  # 18.6/s of 20: a sliding 1 s window always keeps one call of margin
MAX_CATCH_UP_S = 0.02


class Priority(IntEnum):
    ORDER = 0  # orders, modifies, cancels, reconciliation
    ACCOUNT = 1  # balances, positions
    QUOTE = 2  # quote fallbacks: shed first


class SharedBudget:
    """Cross-process check (Redis): a moving one-second window of ``limit`` calls, via ``limits``."""

    def __init__(self, redis_url: str, key: str, limit: int) -> None:
        from limits import RateLimitItemPerSecond
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        self._item = RateLimitItemPerSecond(limit)
        uri = redis_url.replace("redis://", "async+redis://", 1)
        try:
            # redis-py is what the project depends on; limits defaults to coredis, which it does not ship.
            storage = RedisStorage(uri, implementation="redispy")
        except TypeError:  # limits < 4.2 has only the coredis implementation (pyproject should say >=4.2)
            storage = RedisStorage(uri)
        self._limiter = MovingWindowRateLimiter(storage)
        self._key = key

    async def take(self) -> bool:
        return bool(await self._limiter.hit(self._item, self._key))


class RatePacer:
    def __init__(self, rate_per_s: float, clock: Clock, utilisation: float = DEFAULT_UTILISATION,
                 shared: Any = None) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate_per_s
        self.interval = 1.0 / (rate_per_s * utilisation)
        self.clock = clock
        self.shared = shared
        self._next = 0.0
        self._paused_until = 0.0
        self._heap: list[tuple[int, int, float, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.granted = 0
        self.shed = 0
        self.cooldowns = 0

    def queue_depth(self, priority: Priority | None = None) -> int:
        return sum(1 for p, _, _, f in self._heap if not f.done() and (priority is None or p == priority))

    def cooldown(self, seconds: float = 1.0) -> None:
        """Pause every caller (after an EGW00201): the server's window must empty first."""
        self.cooldowns += 1
        self._paused_until = max(self._paused_until, self.clock.monotonic() + seconds)
        self._next = max(self._next, self._paused_until)
        self._wakeup.set()  # re-plan now: quote waiters that can no longer make it are shed at once

    def retry_after(self) -> float:
        """Seconds until the next free slot — the Retry-After a shed caller should be told."""
        now = self.clock.monotonic()
        return max(self.interval, self._next - now + self.interval * self.queue_depth())

    async def acquire(self, priority: Priority = Priority.QUOTE, max_wait: float | None = None) -> None:
        """Wait for a slot. ``max_wait`` (seconds) bounds the wait: a waiter that cannot be served in
        time is shed with ``RestRateLimitCooldownError``; quote waiters are shed as soon as that is
        certain, orders and account calls only when their time is up."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._dispatch(), name="kis-rest-pacer")
        fut: asyncio.Future[None] = loop.create_future()
        deadline = self.clock.monotonic() + max_wait if max_wait is not None else float("inf")
        heapq.heappush(self._heap, (int(priority), next(self._seq), deadline, fut))
        self._wakeup.set()
        await fut

    async def _dispatch(self) -> None:
        while True:
            self._drop_done()
            if not self._heap:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            now = self.clock.monotonic()
            if now >= self._next:
                # A slot is free: the head of the queue (highest priority, then oldest) gets it.
                if self.shared is not None and not await self._shared_take():
                    self._next = self.clock.monotonic() + self.interval
                    continue
                self._drop_done()
                if not self._heap:
                    continue
                _, _, _, fut = heapq.heappop(self._heap)
                fut.set_result(None)
                self.granted += 1
                # Keep the cadence: up to 20 ms of a late wake-up is made up on the next slot (never a burst).
                catch_up = min(MAX_CATCH_UP_S, self.interval / 4)
                self._next = max(self.clock.monotonic() - catch_up, self._next) + self.interval
                continue
            self._shed_expired(now)
            if not self._heap:
                continue
            wake_at = min(self._next, min(item[2] for item in self._heap))
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=max(0.0, wake_at - now))
            except TimeoutError:
                pass

    async def _shared_take(self) -> bool:
        try:
            return bool(await self.shared.take())
        except Exception as err:  # Redis away: the local pacer still keeps this process under the rate
            log.warning("rest_shared_budget_unavailable", error=type(err).__name__)
            return True

    def _drop_done(self) -> None:
        if any(item[3].done() for item in self._heap):
            self._heap = [item for item in self._heap if not item[3].done()]
            heapq.heapify(self._heap)

    def _shed_expired(self, now: float) -> None:
        """Shed waiters whose time is up, and quote waiters that cannot be served before their deadline
        (the slots ahead of them are already spoken for)."""
        keep = []
        ahead = 0  # waiters served before this one, in queue order
        for item in sorted(self._heap):
            priority, _, deadline, fut = item
            earliest = max(self._next, now) + ahead * self.interval
            if deadline <= now or (priority == Priority.QUOTE and deadline < earliest):
                fut.set_exception(RestRateLimitCooldownError("RATE_BUDGET", "REST budget exhausted; shed"))
                self.shed += 1
                continue
            keep.append(item)
            ahead += 1
        if len(keep) != len(self._heap):
            heapq.heapify(keep)
            self._heap = keep

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        for _, _, _, fut in self._heap:
            if not fut.done():
                fut.cancel()
        self._heap = []
