"""Reconciliation: the broker's own record (inquire-daily-ccld, inquire-balance) settles what we don't know.

- An UNKNOWN order (submit outcome not heard) is matched to an unclaimed KIS order of the same account,
  symbol, side, quantity and price placed after our submit started; if none appears within the grace
  period it never reached KIS and is REJECTED (``BROKER_ORDER_NOT_FOUND``) — never resubmitted.
- Fills KIS reports that we missed (lost notices) are added; cancels and modifies KIS confirmed are
  applied. Every correction is an ``event_log`` row.
- Today's bought/sold quantities per symbol are compared with inquire-balance; a difference is logged.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from kis.aio import cancel_and_wait
from kis.broker.errors import KisError
from kis.broker.orders import BrokerOrderRow
from kis.broker.pacing import Priority
from kis.clock import KST
from kis.gateway.executor import OrderExecutor
from kis.gateway.order_state import TERMINAL, S, next_state
from kis.gateway.orders import OrderService
from kis.logs import get_logger
from kis.storage.models import BrokerOrderRef, Fill, Order

log = get_logger("kis.gateway.reconcile")

CLOCK_SKEW = timedelta(seconds=5)


class Reconciler:
    def __init__(self, orders: OrderService, executor: OrderExecutor, interval_s: float,
                 unknown_grace_s: float) -> None:
        self.orders = orders
        self.executor = executor
        self.sessions = orders.sessions
        self.clock = orders.clock
        self.audit = orders.audit
        self.interval_s = interval_s
        self.unknown_grace = timedelta(seconds=unknown_grace_s)
        self.runs = 0
        self.corrections = 0
        self.last_run: str | None = None
        self.last_error: str | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        first = True
        while True:
            if not first:
                try:
                    await asyncio.wait_for(self.executor.reconcile_soon.wait(), timeout=self.interval_s)
                except TimeoutError:
                    pass
            first = False
            self.executor.reconcile_soon.clear()
            try:
                await self.run()
            except Exception as err:  # next round will try again
                self.last_error = f"{type(err).__name__}: {err}"[:200]
                log.exception("reconcile_failed")

    async def run(self) -> dict[str, Any]:
        async with self._lock:
            return await self._run()

    async def _run(self) -> dict[str, Any]:
        broker = self.orders.broker
        if broker is None:
            return {"reconciled": False, "reason": "no broker"}
        today = self.clock.now().astimezone(KST).strftime("%Y%m%d")
        async with self.sessions() as s:
            open_orders = (await s.scalars(select(Order).where(
                Order.status.notin_([st.value for st in TERMINAL]), Order.status != S.ACCEPTED.value))).all()
            today_orders = (await s.scalars(select(Order).where(Order.trade_date == today))).all()
        # An order is only ever compared with KIS's orders of its own trading day: a leftover from an earlier
        # day must not be matched to (or settled by) today's orders.
        days = {(o.account_no, o.trade_date) for o in open_orders} | {(o.account_no, today) for o in today_orders}
        corrections = 0
        for account_no, day in sorted(days):
            ref = self.orders.accounts.resolve(account_no).ref
            try:
                rows = await broker.daily_orders(ref, day, priority=Priority.ORDER)
            except KisError as err:
                self.last_error = f"daily-ccld {err.code}"
                log.warning("reconcile_ccld_failed", code=err.code, day=day)
                continue
            corrections += await self._orders(account_no, day, rows)
            if day == today:
                corrections += await self._positions(account_no, today)
            else:
                corrections += await self._expire(account_no, day)
        accounts = {account_no for account_no, _ in days}
        self.runs += 1
        self.corrections += corrections
        self.last_run = self.clock.now().isoformat()
        self.last_error = None
        return {"reconciled": True, "accounts": len(accounts), "corrections": corrections, "at": self.last_run}

    async def _orders(self, account_no: str, day: str, rows: list[BrokerOrderRow]) -> int:
        by_no = {r.order_no: r for r in rows}
        async with self.sessions() as s:
            refs = (await s.scalars(select(BrokerOrderRef))).all()
            mine = (await s.scalars(select(Order).where(Order.account_no == account_no, Order.trade_date == day,
                                                        Order.status != S.ACCEPTED.value))).all()
        claimed = {r.broker_order_no for r in refs}
        refs_by_order: dict[str, list[BrokerOrderRef]] = defaultdict(list)
        for r in refs:
            refs_by_order[r.order_id].append(r)
        corrections = 0
        for o in sorted(mine, key=lambda x: x.created_at):
            if o.id in self.executor.inflight_ids:
                continue  # its submit is still waiting for KIS's answer here: that answer settles it
            if o.status in (S.UNKNOWN.value, S.SUBMITTING.value) and not o.broker_order_no:
                corrections += await self._resolve_unknown(o, rows, claimed)
                continue
            if S(o.status) in TERMINAL and o.status != S.CANCELLED.value:
                continue
            chain = [by_no[r.broker_order_no] for r in refs_by_order.get(o.id, []) if r.broker_order_no in by_no]
            corrections += await self._settle(o, chain, rows)
        return corrections

    async def _resolve_unknown(self, o: Order, rows: list[BrokerOrderRow], claimed: set[str]) -> int:
        started = (o.submit_started_at or o.updated_at)
        if started.tzinfo is None:
            started = started.replace(tzinfo=KST)
        not_before = started.astimezone(KST) - CLOCK_SKEW
        for row in sorted(rows, key=lambda r: r.order_no):
            if row.order_no in claimed or row.orig_order_no or row.symbol != o.symbol or row.side != o.side:
                continue
            if row.qty != o.qty or (o.order_type == "LIMIT" and row.price != o.price):
                continue
            placed = _row_time(row)
            if placed is not None and placed < not_before:
                continue
            now = self.clock.now()
            async with self.sessions() as s, s.begin():
                if await s.get(BrokerOrderRef, row.order_no) is not None:
                    continue  # linked meanwhile (the submit's own answer arrived)
                new = next_state(o.status, "submit_ack", 0)
                result = await s.execute(update(Order).where(Order.id == o.id, Order.version == o.version).values(
                    status=new.value, broker_order_no=row.order_no, broker_branch="", broker_order_time=row.order_time,
                    updated_at=now, version=o.version + 1))
                if result.rowcount != 1:
                    return 0  # the order changed since we read it: the next round looks again
                claimed.add(row.order_no)
                s.add(BrokerOrderRef(broker_order_no=row.order_no, order_id=o.id, kind="new", created_at=now))
                self.audit.add(s, "reconcile_order_linked", o.correlation_id, {
                    "order_id": o.id, "broker_order_no": row.order_no, "from": o.status, "to": new.value})
            log.info("reconcile_order_linked", order_id=o.id, broker_order_no=row.order_no)
            async with self.sessions() as s:
                fresh = await s.get(Order, o.id)
            assert fresh is not None
            return 1 + await self._settle(fresh, [row], rows)
        if self.clock.now() - started.astimezone(KST) < self.unknown_grace:
            return 0  # may still show up
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            new = next_state(o.status, "submit_rejected", 0)
            result = await s.execute(update(Order).where(Order.id == o.id, Order.version == o.version).values(
                status=new.value, reject_code="BROKER_ORDER_NOT_FOUND",
                reject_message="the submit's outcome was unknown and KIS has no such order",
                updated_at=now, version=o.version + 1))
            if result.rowcount != 1:
                return 0
            self.audit.add(s, "reconcile_order_not_found", o.correlation_id, {"order_id": o.id, "from": o.status})
        return 1

    async def _settle(self, o: Order, chain: list[BrokerOrderRow], rows: list[BrokerOrderRow]) -> int:
        """Fills and cancels KIS knows about that we do not."""
        if not chain:
            return 0
        corrections = 0
        broker_filled = sum(r.filled_qty for r in chain if not r.cancelled)
        if broker_filled > o.filled_qty:
            missing = broker_filled - o.filled_qty
            amount = sum(r.filled_amount for r in chain if not r.cancelled) - o.filled_amount
            price = max(1, round(amount / missing)) if amount > 0 else chain[-1].price
            async with self.sessions() as s:
                n = len((await s.scalars(select(Fill.id).where(Fill.order_id == o.id))).all())
            # Only if no fill was recorded since ``o`` was read: a notice may have brought this very fill.
            added = await self.executor.record_fill(o.id, chain[-1].order_no, missing, price, chain[-1].order_time,
                                                    "reconcile", f"reconcile:{o.id}:{broker_filled}:{n}",
                                                    expect_filled=o.filled_qty)
            if added:
                corrections += 1
                await self._event(o, "reconcile_fill_added", {"qty": missing, "price": price,
                                                              "broker_filled": broker_filled})
        async with self.sessions() as s:
            fresh = await s.get(Order, o.id)
        assert fresh is not None
        cancelled_at_broker = sum(r.qty for r in rows if r.cancelled and r.orig_order_no in {c.order_no for c in chain})
        remaining = fresh.qty - fresh.filled_qty - fresh.cancelled_qty
        if cancelled_at_broker and remaining > 0 and fresh.status not in (S.CANCELLED.value, S.FILLED.value):
            take = min(remaining, cancelled_at_broker)
            now = self.clock.now()
            async with self.sessions() as s, s.begin():
                values: dict[str, Any] = {"cancelled_qty": fresh.cancelled_qty + take, "updated_at": now,
                                          "version": fresh.version + 1}
                if take == remaining:
                    values["status"] = next_state(fresh.status, "cancel_done", fresh.filled_qty).value
                result = await s.execute(update(Order).where(Order.id == o.id, Order.version == fresh.version)
                                         .values(**values))
                if result.rowcount != 1:
                    return corrections  # changed meanwhile: the next round looks again
                self.audit.add(s, "reconcile_cancel_applied", o.correlation_id, {"order_id": o.id, "qty": take})
            corrections += 1
        elif fresh.status == S.MODIFY_PENDING.value:
            # A modify whose answer was lost: a newer KIS order off ours means it happened.
            latest = max((r for r in rows if r.orig_order_no in {c.order_no for c in chain} and not r.cancelled),
                         key=lambda r: r.order_no, default=None)
            if latest is not None:
                await self._finish_modify(fresh, latest)
                corrections += 1
        return corrections

    async def _expire(self, account_no: str, day: str) -> int:
        """Orders of a finished trading day still working here, after that day's fills were settled above:
        KIS ended them with the day, so their remainder is cancelled. UNKNOWN ones are left to the rule
        for unknown outcomes (linked or, after the grace, not found)."""
        async with self.sessions() as s:
            working = (await s.scalars(select(Order).where(
                Order.account_no == account_no, Order.trade_date == day,
                Order.status.in_([S.SUBMITTED.value, S.PARTIALLY_FILLED.value, S.MODIFY_PENDING.value,
                                  S.CANCEL_PENDING.value])))).all()
        expired = 0
        for o in working:
            now = self.clock.now()
            async with self.sessions() as s, s.begin():
                result = await s.execute(update(Order).where(Order.id == o.id, Order.version == o.version).values(
                    status=next_state(o.status, "expire", o.filled_qty).value, pending_price=None,
                    cancelled_qty=o.qty - o.filled_qty, updated_at=now, version=o.version + 1))
                if result.rowcount != 1:
                    continue  # changed meanwhile: the next round looks again
                self.audit.add(s, "order_expired", o.correlation_id, {
                    "order_id": o.id, "from": o.status, "trade_date": day, "filled_qty": o.filled_qty,
                    "expired_qty": o.qty - o.filled_qty, "reason": "its trading day ended at KIS"})
            log.info("order_expired", order_id=o.id, trade_date=day)
            expired += 1
        return expired

    async def _finish_modify(self, o: Order, row: BrokerOrderRow) -> None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            result = await s.execute(update(Order).where(Order.id == o.id, Order.version == o.version).values(
                status=next_state(o.status, "modify_done", o.filled_qty).value, price=row.price, pending_price=None,
                broker_order_no=row.order_no, updated_at=now, version=o.version + 1))
            if result.rowcount != 1:
                return
            if await s.get(BrokerOrderRef, row.order_no) is None:
                s.add(BrokerOrderRef(broker_order_no=row.order_no, order_id=o.id, kind="modify", created_at=now))
            self.audit.add(s, "reconcile_modify_applied", o.correlation_id,
                           {"order_id": o.id, "broker_order_no": row.order_no, "price": row.price})

    async def _event(self, o: Order, event_type: str, payload: dict[str, Any]) -> None:
        async with self.sessions() as s, s.begin():
            self.audit.add(s, event_type, o.correlation_id, {"order_id": o.id, **payload})

    async def _positions(self, account_no: str, today: str) -> int:
        """Today's filled buy/sell quantities per symbol vs KIS's own (thdt_buyqty / thdt_sll_qty)."""
        broker = self.orders.broker
        assert broker is not None
        try:
            positions, _ = await broker.balance(self.orders.accounts.resolve(account_no).ref, priority=Priority.ORDER)
        except KisError as err:
            log.warning("reconcile_balance_failed", code=err.code)
            return 0
        async with self.sessions() as s:
            mine = (await s.scalars(select(Order).where(Order.account_no == account_no,
                                                        Order.trade_date == today))).all()
        ours: dict[str, int] = defaultdict(int)
        for o in mine:
            ours[o.symbol] += o.filled_qty if o.side == "BUY" else -o.filled_qty
        broker_qty = {p.symbol: p.qty for p in positions}
        mismatches = {sym: {"gateway_net_today": q, "broker_holding": broker_qty.get(sym, 0)}
                      for sym, q in ours.items() if q > 0 and broker_qty.get(sym, 0) < q}
        if mismatches:
            async with self.sessions() as s, s.begin():
                self.audit.add(s, "reconcile_position_mismatch", f"reconcile-{today}", {"symbols": mismatches})
            return 1
        return 0


def _row_time(row: BrokerOrderRow):  # type: ignore[no-untyped-def]
    from datetime import datetime

    try:
        return datetime.strptime(row.order_date + row.order_time, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        return None
