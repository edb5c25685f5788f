"""Group commit of accepted orders (``kis.gateway.intake``) on a real SQLite file and a real PostgreSQL server.

Two order services on one database stand for two gateway processes: each has its own engine and its own
in-process queue, so only the database keeps them honest. What must hold:
- a burst commits in a few transactions, and every accepted order has its key, its event and its usage;
- the daily limit is exact across batches and across processes (the conditional UPDATE, then order-by-order);
- one key is one order, whoever receives its retries;
- inside one batch: a key repeated with another body is refused, a refused order takes no daily slot;
  concurrent sells cannot promise the same shares twice.
"""

from __future__ import annotations

import asyncio
import tempfile
import unittest
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from kis.broker.orders import KisOrderApi
from kis.clock import KST, ManualClock
from kis.config import MarketOverride
from kis.gateway.accounts import AccountRegistry
from kis.gateway.audit import Audit, Provenance
from kis.gateway.errors import ApiError
from kis.gateway.kill_switch import KillSwitch
from kis.gateway.market import MarketSchedule
from kis.gateway.orders import OrderService
from kis.gateway.risk import RiskGuard, RiskLimits
from kis.storage.db import create_engine, sessionmaker
from kis.storage.migrate import upgrade_async
from kis.storage.models import DailyUsage, EventLog, IdempotencyKey, Order
from kis_testing import PostgresDatabaseMixin

ACCOUNT = "12345678-01"
BUY = {"account_id": "A1", "symbol": "005930", "side": "BUY", "qty": 1, "price": 70_000}
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=KST)  # the market is open by override anyway


def limits(daily_orders: int) -> RiskLimits:
    return RiskLimits(max_order_qty=1_000, max_order_notional=10**10, daily_max_orders=daily_orders,
                      daily_max_notional=10**13, live=False, live_enabled=False, live_allowlist=frozenset())


class IntakeCase(unittest.IsolatedAsyncioTestCase):
    def db_url(self) -> str:
        self._dir = tempfile.TemporaryDirectory()
        self.addCleanup(self._dir.cleanup)
        return f"sqlite:///{self._dir.name}/intake.db"

    async def asyncSetUp(self) -> None:
        self.url = self.db_url()
        await upgrade_async(self.url)
        self.engines: list[Any] = []
        self.broker_sellable = 0

    async def asyncTearDown(self) -> None:
        for engine in self.engines:
            await engine.dispose()

    async def service(self, daily_orders: int = 1_000) -> OrderService:
        """An order service as the gateway builds it, on its own engine (as a second process would have)."""
        engine = create_engine(self.url)
        self.engines.append(engine)
        sessions = sessionmaker(engine)
        clock = ManualClock(NOW)
        audit = Audit(clock, Provenance("0" * 40, "f" * 16))
        kill = KillSwitch(sessions, audit, clock)

        async def no_quote(_symbol: str) -> int:
            raise AssertionError("LIMIT orders are sized by their own price")

        async def sellable(_account: Any, _symbol: str) -> int:
            return self.broker_sellable  # what KIS would say is sellable; the intake subtracts unsent sells

        risk = RiskGuard(limits(daily_orders), MarketSchedule(clock, MarketOverride.OPEN), no_quote, sellable)
        service = OrderService(sessions, clock, AccountRegistry(ACCOUNT), kill, risk, audit, "sim", "0" * 40,
                               KisOrderApi(None, paper=False))  # type: ignore[arg-type]  # nothing is sent here
        return service

    async def place(self, service: OrderService, body: dict[str, Any], key: str) -> tuple[int, Any]:
        try:
            return await service.place(body, key)
        except ApiError as err:
            return err.status, err.code

    async def count(self, model: Any, *where: Any) -> int:
        async with sessionmaker(self.engines[0])() as s:
            return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def usage(self) -> int:
        async with sessionmaker(self.engines[0])() as s:
            return int(await s.scalar(select(func.coalesce(func.sum(DailyUsage.order_count), 0))) or 0)

    async def test_burst_commits_in_few_transactions_and_writes_everything(self) -> None:
        svc = await self.service()
        await svc.kill_switch.set(False, "intake test", "test")
        results = await asyncio.gather(*(self.place(svc, BUY, f"burst-{i}") for i in range(200)))
        self.assertEqual(Counter(status for status, _ in results), {201: 200})
        self.assertEqual(len({body["order_id"] for _, body in results}), 200)
        # Group commit: far fewer transactions than orders (one per batch).
        self.assertLessEqual(svc.intake.batches, 20, svc.intake.batches)
        self.assertEqual(await self.count(Order, Order.status == "ACCEPTED"), 200)
        self.assertEqual(await self.count(IdempotencyKey), 200)
        self.assertEqual(await self.count(EventLog, EventLog.event_type == "order_accepted"), 200)
        self.assertEqual(await self.usage(), 200)
        self.assertEqual(svc.metrics.accepted, 200)

    async def test_kill_switch_refuses_the_whole_batch_and_writes_nothing(self) -> None:
        svc = await self.service()  # no system_state row: ACTIVE
        results = await asyncio.gather(*(self.place(svc, BUY, f"k-{i}") for i in range(30)))
        self.assertEqual(set(results), {(403, "KILL_SWITCH_ACTIVE")})
        self.assertEqual(await self.count(Order), 0)
        self.assertEqual(await self.count(IdempotencyKey), 0)
        self.assertEqual(svc.metrics.rejects_by_code["KILL_SWITCH_ACTIVE"], 30)

    async def test_daily_limit_is_exact_across_two_processes(self) -> None:
        a, b = await self.service(daily_orders=7), await self.service(daily_orders=7)
        await a.kill_switch.set(False, "intake test", "test")
        results = await asyncio.gather(*(self.place(a if i % 2 else b, BUY, f"d-{i}") for i in range(40)))
        statuses = Counter(status for status, _ in results)
        self.assertEqual(statuses, {201: 7, 403: 33}, results)
        self.assertEqual({body for status, body in results if status == 403}, {"DAILY_LIMIT_EXCEEDED"})
        self.assertEqual(await self.count(Order), 7)
        self.assertEqual(await self.usage(), 7)

    async def test_one_key_is_one_order_across_two_processes(self) -> None:
        a, b = await self.service(), await self.service()
        await a.kill_switch.set(False, "intake test", "test")
        results = await asyncio.gather(*(self.place(a if i % 2 else b, BUY, "same-key") for i in range(40)))
        self.assertEqual({status for status, _ in results}, {201}, results)
        self.assertEqual(len({body["order_id"] for _, body in results}), 1)
        self.assertEqual(await self.count(Order), 1)
        self.assertEqual(await self.usage(), 1)
        self.assertEqual(a.metrics.accepted + b.metrics.accepted, 1)
        self.assertEqual(a.metrics.replays + b.metrics.replays, 39)

    async def test_inside_one_batch(self) -> None:
        svc = await self.service(daily_orders=3)
        await svc.kill_switch.set(False, "intake test", "test")
        # LIMIT buys reach the queue without waiting on anything, so these arrive before the first batch runs.
        results = await asyncio.gather(
            self.place(svc, BUY, "k1"), self.place(svc, {**BUY, "qty": 2}, "k1"),  # same key, other body
            self.place(svc, BUY, "k1"),  # a retry of k1 in the same batch
            self.place(svc, {**BUY, "qty": 5000}, "too-big"),  # refused before the queue: takes no slot
            self.place(svc, BUY, "k2"), self.place(svc, BUY, "k3"), self.place(svc, BUY, "k4"))
        self.assertEqual(svc.intake.batches, 1)
        self.assertEqual(results[0][0], 201)
        self.assertEqual(results[1], (409, "IDEMPOTENCY_KEY_BODY_MISMATCH"))
        self.assertEqual(results[2], results[0])
        self.assertEqual(results[3], (403, "MAX_QTY_EXCEEDED"))
        # Daily limit 3: k1 (once), k2, k3; k4 is refused and nothing passed the limit.
        self.assertEqual([results[4][0], results[5][0]], [201, 201])
        self.assertEqual(results[6], (403, "DAILY_LIMIT_EXCEEDED"))
        self.assertEqual(await self.usage(), 3)
        self.assertEqual(await self.count(Order), 3)
        # A replay of an accepted key is answered from the store in a later batch, limit or not.
        self.assertEqual(await self.place(svc, BUY, "k1"), results[0])
        self.assertEqual((svc.metrics.accepted, svc.metrics.replays), (3, 2))

    async def test_concurrent_sells_cannot_promise_the_same_shares(self) -> None:
        svc = await self.service()
        await svc.kill_switch.set(False, "intake test", "test")
        self.broker_sellable = 10
        sell = {**BUY, "side": "SELL", "qty": 4}
        results = await asyncio.gather(*(self.place(svc, sell, f"s{i}") for i in range(6)))
        # 10 sellable: two sells of 4 fit, whichever batches they land in; the rest would oversell.
        self.assertEqual(Counter(results[i][0] for i in range(6)), {201: 2, 403: 4}, results)
        self.assertEqual({body for status, body in results if status == 403}, {"INSUFFICIENT_HOLDINGS"})
        self.assertEqual(await self.count(Order, Order.side == "SELL"), 2)

    async def test_unsent_sells_already_stored_count_against_holdings(self) -> None:
        svc = await self.service()
        await svc.kill_switch.set(False, "intake test", "test")
        self.broker_sellable = 5
        sell = {**BUY, "side": "SELL", "qty": 3}
        self.assertEqual((await self.place(svc, sell, "first"))[0], 201)
        self.assertEqual(await self.place(svc, sell, "second"), (403, "INSUFFICIENT_HOLDINGS"))


class PostgresIntakeTest(PostgresDatabaseMixin, IntakeCase):
    pg_reset_each_test = True

    def db_url(self) -> str:
        return self.pg_url

