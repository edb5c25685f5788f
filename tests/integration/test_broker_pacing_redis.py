"""The cross-process REST budget (``SharedBudget``, ``limits`` moving window on the real Redis server)."""

from __future__ import annotations

import asyncio
import os
import time
import unittest
import uuid

from kis.broker.pacing import Priority, RatePacer, SharedBudget
from kis.clock import SystemClock

REDIS_URL = os.environ.get("KIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class SharedBudgetTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        try:
            await client.ping()
        except Exception as err:  # pragma: no cover - depends on the machine
            self.skipTest(f"no Redis at {REDIS_URL}: {err}")
        finally:
            await client.aclose()
        self.key = f"kis:test:rest:{uuid.uuid4().hex}"

    async def test_take_allows_limit_per_second(self) -> None:
        budget = SharedBudget(REDIS_URL, self.key, 5)
        results = [await budget.take() for _ in range(7)]
        self.assertEqual(results, [True] * 5 + [False] * 2)

    async def test_two_pacers_share_one_budget(self) -> None:
        # Two processes' pacers (fast locally) under one app key budget of 4 calls per second.
        budget_a = SharedBudget(REDIS_URL, self.key, 4)
        budget_b = SharedBudget(REDIS_URL, self.key, 4)
        pacers = [RatePacer(100, SystemClock(), shared=budget_a), RatePacer(100, SystemClock(), shared=budget_b)]
        times: list[float] = []

        async def one(pacer: RatePacer) -> None:
            await pacer.acquire(Priority.ORDER)
            times.append(time.monotonic())

        try:
            await asyncio.wait_for(asyncio.gather(*(one(pacers[i % 2]) for i in range(6))), 10)
        finally:
            for pacer in pacers:
                await pacer.close()
        times.sort()
        self.assertGreaterEqual(times[4] - times[0], 0.8)  # the 5th call waited for the window to move (~1 s)
        self.assertLess(times[3] - times[0], 0.5)  # the first 4 went at the local pace


if __name__ == "__main__":
    unittest.main()
