"""Order intake: group commit of accepted orders into the durable queue.

Callers of ``POST /v1/orders`` hand their validated request to one drain task, which writes everything that
arrived meanwhile in one transaction: idempotency lookups, kill switch, daily limits and holdings are decided
inside that transaction with in-batch accounting, then one COMMIT (one fsync) makes the whole batch durable
before any caller hears "accepted". A burst of N orders costs a handful of round trips instead of N
transactions, and a single order is just a batch of one.

If the batch cannot commit as a whole — another process took the same idempotency key or the last daily slot
between our read and our write — it is rolled back and every order is retried as a batch of its own, so one
order's conflict never refuses another.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kis.clock import KST, Clock
from kis.gateway.audit import Audit
from kis.gateway.errors import ApiError
from kis.gateway.kill_switch import KillSwitch
from kis.gateway.order_state import S
from kis.gateway.risk import OrderRequest, RiskGuard
from kis.logs import get_logger
from kis.storage.models import SCHEMA_VERSION, DailyUsage, EventLog, IdempotencyKey, Order

log = get_logger("kis.gateway.intake")

MAX_BATCH = 256  # bounds one transaction's size and the time its locks are held
UNSENT_SELLS = (S.ACCEPTED.value, S.SUBMITTING.value, S.UNKNOWN.value)

Answer = tuple[int, dict[str, Any]]


@dataclass
class Intake:
    """One caller's order on its way into the queue. ``broker_sellable`` is fetched before the batch (SELL)."""

    req: OrderRequest
    key: str
    digest: str
    notional: int
    broker_sellable: int | None = None
    future: asyncio.Future[tuple[str, Answer]] = field(default=None)  # type: ignore[assignment]


@dataclass
class _Rows:
    """What one batch inserts, as plain values: a multi-row INSERT beats the ORM's per-object bookkeeping."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class _Conflict(Exception):
    """The batch met a concurrent writer; ``daily`` says it was the daily-usage row."""

    def __init__(self, daily: bool) -> None:
        super().__init__("daily usage changed concurrently" if daily else "idempotency key taken concurrently")
        self.daily = daily


async def unsent_sell_qty(session: AsyncSession, account_no: str, symbol: str) -> int:
    """Shares promised to SELL orders KIS has not (knowingly) received: not sellable a second time."""
    total = await session.scalar(select(func.coalesce(func.sum(Order.qty), 0)).where(
        Order.account_no == account_no, Order.symbol == symbol, Order.side == "SELL",
        Order.status.in_(UNSENT_SELLS)))
    return int(total or 0)


def key_reused() -> ApiError:
    return ApiError(409, "IDEMPOTENCY_KEY_BODY_MISMATCH", "this Idempotency-Key was used with a different order body")


def stored_answer(row: IdempotencyKey, digest: str) -> Answer:
    if row.request_hash != digest:
        raise key_reused()
    return row.status_code, dict(row.response_json)


class OrderIntake:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], write_lock: Any, kill_switch: KillSwitch,
                 risk: RiskGuard, audit: Audit, clock: Clock, env: str, git_sha: str,
                 on_accepted: Callable[[], None]) -> None:
        self.sessions = sessions
        self.write_lock = write_lock
        self.kill_switch = kill_switch
        self.risk = risk
        self.audit = audit
        self.clock = clock
        self.env = env
        self.git_sha = git_sha
        self.on_accepted = on_accepted
        self.dialect = sessions.kw["bind"].dialect.name
        self._pending: list[Intake] = []
        self._drainer: asyncio.Task[None] | None = None
        self.batches = 0

    async def submit(self, item: Intake) -> tuple[str, Answer]:
        """("accepted" | "replay", (status, body)); raises the ApiError that refuses the order."""
        item.future = asyncio.get_running_loop().create_future()
        self._pending.append(item)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="order-intake")
        return await item.future

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._commit(batch)
            except _Conflict:
                for item in batch:
                    await self._commit_alone(item)
            except Exception as err:
                log.error("order_intake_failed", error=type(err).__name__, orders=len(batch))
                for item in batch:
                    _settle(item, exc=err)

    async def _commit_alone(self, item: Intake) -> None:
        try:
            await self._commit([item])
        except _Conflict as conflict:
            if conflict.daily:
                _settle(item, exc=ApiError(403, "DAILY_LIMIT_EXCEEDED", "daily order count or notional limit reached"))
                return
            # The key was committed by another process: this request is a retry of that order.
            try:
                async with self.sessions() as s:
                    row = await s.get(IdempotencyKey, item.key)
                if row is None:
                    raise ApiError(503, "ORDER_INTAKE_BUSY", "could not record the order; retry", retryable=True)
                _settle(item, result=("replay", stored_answer(row, item.digest)))
            except Exception as err:
                _settle(item, exc=err)
        except Exception as err:
            _settle(item, exc=err)

    async def _commit(self, batch: list[Intake]) -> None:
        now = self.clock.now()
        trade_date = now.astimezone(KST).strftime("%Y%m%d")
        outcomes: list[tuple[str, Answer] | BaseException] = []
        rows = _Rows()
        try:
            async with self.write_lock, self.sessions() as s, s.begin():
                kill = await self.kill_switch.is_active(s)
                keys = {item.key for item in batch}
                stored = {r.key: r for r in await s.scalars(select(IdempotencyKey).where(IdempotencyKey.key.in_(keys)))}
                accounts = {item.req.account.number for item in batch}
                usage = await self._usage(s, accounts, trade_date) if not kill else {}
                taken: dict[str, tuple[int, int]] = {}
                unsent: dict[tuple[str, str], int] = {}
                in_batch: dict[str, tuple[str, Answer]] = {}
                for item in batch:
                    try:
                        outcomes.append(await self._decide(s, item, kill, stored, in_batch, usage, taken, unsent,
                                                           trade_date, now, rows))
                    except ApiError as err:
                        outcomes.append(err)
                if rows.orders:
                    # One multi-row statement per table (orders first: the other two refer to them).
                    await s.execute(insert(Order.__table__), rows.orders)
                    await s.execute(insert(IdempotencyKey.__table__), rows.keys)
                    await s.execute(insert(EventLog.__table__), rows.events)
                    # Last before COMMIT: on PostgreSQL the usage row stays locked only for this and the commit.
                    await self._take_usage(s, taken, trade_date)
        except IntegrityError:
            raise _Conflict(daily=False) from None
        self.batches += 1
        for item, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                _settle(item, exc=outcome)
            else:
                _settle(item, result=outcome)
        if rows.orders:
            self.on_accepted()
            for o in rows.orders:
                log.info("order_accepted", order_id=o["id"], symbol=o["symbol"], side=o["side"], qty=o["qty"])

    async def _usage(self, s: AsyncSession, accounts: set[str], trade_date: str) -> dict[str, tuple[int, int]]:
        """Today's usage per account, creating missing rows (a concurrent creator is not an error)."""
        query = select(DailyUsage.account_no, DailyUsage.order_count, DailyUsage.notional).where(
            DailyUsage.account_no.in_(accounts), DailyUsage.trade_date == trade_date)
        usage = {a: (count, notional) for a, count, notional in await s.execute(query)}
        missing = sorted(accounts - usage.keys())
        if missing:
            dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
            await s.execute(dialect_insert(DailyUsage).values(
                [{"account_no": a, "trade_date": trade_date, "order_count": 0, "notional": 0} for a in missing]
            ).on_conflict_do_nothing())
            usage = {a: (count, notional) for a, count, notional in await s.execute(query)}
        return usage

    async def _take_usage(self, s: AsyncSession, taken: dict[str, tuple[int, int]], trade_date: str) -> None:
        """Add the batch's orders to each account's usage row, unless that would pass a limit — which means
        another process took slots since we read the row: the batch is then retried order by order."""
        L = self.risk.limits
        for account_no, (count, notional) in taken.items():
            result = await s.execute(
                update(DailyUsage)
                .where(DailyUsage.account_no == account_no, DailyUsage.trade_date == trade_date,
                       DailyUsage.order_count + count <= L.daily_max_orders,
                       DailyUsage.notional + notional <= L.daily_max_notional)
                .values(order_count=DailyUsage.order_count + count, notional=DailyUsage.notional + notional))
            if result.rowcount != 1:
                raise _Conflict(daily=True)

    async def _decide(self, s: AsyncSession, item: Intake, kill: bool, stored: dict[str, IdempotencyKey],
                      in_batch: dict[str, tuple[str, Answer]], usage: dict[str, tuple[int, int]],
                      taken: dict[str, tuple[int, int]], unsent: dict[tuple[str, str], int], trade_date: str, now: Any,
                      rows: _Rows) -> tuple[str, Answer]:
        """One order's fate inside the batch transaction, in the order a lone request would meet the checks."""
        row = stored.get(item.key)
        if row is not None:
            return "replay", stored_answer(row, item.digest)
        earlier = in_batch.get(item.key)
        if earlier is not None:
            if earlier[0] != item.digest:
                raise key_reused()
            return "replay", earlier[1]
        if kill:
            raise ApiError(403, "KILL_SWITCH_ACTIVE", "the kill switch is ACTIVE: no orders")
        req = item.req
        count, spent = usage.get(req.account.number, (0, 0))
        mine = taken.get(req.account.number, (0, 0))
        self.risk.check_daily(count + mine[0], spent + mine[1], item.notional)
        if req.side == "SELL":
            pos = (req.account.number, req.symbol)
            if pos not in unsent:
                unsent[pos] = await unsent_sell_qty(s, *pos)
            self.risk.check_holdings(req, (item.broker_sellable or 0) - unsent[pos])
            unsent[pos] += req.qty
        taken[req.account.number] = (mine[0] + 1, mine[1] + item.notional)
        order_id = f"ord_{uuid.uuid4().hex[:20]}"
        correlation = f"corr_{uuid.uuid4().hex[:20]}"
        rows.orders.append({
            "id": order_id, "idempotency_key": item.key, "account_alias": req.account.alias,
            "account_no": req.account.number, "env": self.env, "symbol": req.symbol, "side": req.side,
            "order_type": req.order_type, "qty": req.qty, "price": req.price, "status": S.ACCEPTED.value,
            "strategy_id": req.strategy_id, "correlation_id": correlation, "filled_qty": 0, "filled_amount": 0,
            "cancelled_qty": 0, "trade_date": trade_date, "created_at": now, "updated_at": now, "version": 1,
            "git_commit_sha": self.git_sha, "schema_version": SCHEMA_VERSION})
        answer: Answer = (201, {"order_id": order_id, "status": S.ACCEPTED.value, "idempotency_key": item.key})
        rows.keys.append({"key": item.key, "request_hash": item.digest, "order_id": order_id, "status_code": 201,
                          "response_json": answer[1], "created_at": now})
        rows.events.append(self.audit.row("order_accepted", correlation, {
            "order_id": order_id, "account": req.account.masked, "symbol": req.symbol, "side": req.side,
            "order_type": req.order_type, "qty": req.qty, "price": req.price, "notional": item.notional,
            "strategy_id": req.strategy_id}))
        in_batch[item.key] = (item.digest, answer)
        return "accepted", answer


def _settle(item: Intake, *, result: tuple[str, Answer] | None = None, exc: BaseException | None = None) -> None:
    # A caller that went away (cancelled) leaves a done future; its order is committed or not all the same.
    if item.future.done():
        return
    if exc is not None:
        item.future.set_exception(exc)
    else:
        item.future.set_result(result)  # type: ignore[arg-type]
