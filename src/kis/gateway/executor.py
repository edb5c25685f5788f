"""The order executor: drains ACCEPTED orders to KIS, paced, only on the session owner.

Each submit is claimed (ACCEPTED → SUBMITTING, committed) before the broker call. The answer decides:
an ack → SUBMITTED; a business reject → REJECTED; "not processed" (EGW00201, token) → back to ACCEPTED;
anything else (timeout, reset, 5xx) → UNKNOWN, which only reconciliation resolves — a submit whose
outcome is unknown is never sent again. A process that dies mid-submit leaves SUBMITTING rows, which the
next owner turns into UNKNOWN at start.

Fill notices (H0STCNI0/9) land here too: they update the order and write a fill, even when they arrive
before the submit's own answer (they wait, keyed by KIS order number, until the order knows it).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from kis.aio import cancel_and_wait
from kis.broker.errors import (
    CredentialsError,
    KisBusinessError,
    KisError,
    KisRequestError,
    RestRateLimitCooldownError,
    TokenExpiredError,
    TokenInvalidError,
    TokenIssueTooSoonError,
    TrMismatchError,
)
from kis.broker.orders import BrokerNotice, parse_notice
from kis.gateway.order_state import TERMINAL, InvalidTransition, S, next_state
from kis.gateway.orders import OrderService
from kis.logs import get_logger
from kis.storage.models import BrokerOrderRef, Fill, Order

log = get_logger("kis.gateway.executor")

NOT_PROCESSED = (RestRateLimitCooldownError, TokenExpiredError, TokenInvalidError, TokenIssueTooSoonError)
CONFIG_ERRORS = (CredentialsError, TrMismatchError)
CONCURRENCY = 4
EARLY_NOTICE_TTL_S = 120.0
STOP_ANSWER_WAIT_S = 10.0  # on stop, how long submits already sent may wait for KIS's answer


class OrderExecutor:
    def __init__(self, orders: OrderService) -> None:
        self.orders = orders
        self.sessions = orders.sessions
        self.clock = orders.clock
        self.audit = orders.audit
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._on_wire: set[asyncio.Task[None]] = set()  # submits whose request has left for KIS
        # Orders whose submit is waiting for KIS's answer in this process: SUBMITTING, but not unknown.
        self.inflight_ids: set[str] = set()
        self._early: dict[str, list[tuple[float, BrokerNotice]]] = defaultdict(list)
        self._fill_seq: dict[str, int] = defaultdict(int)
        self._notice_lock = asyncio.Lock()
        self.reconcile_soon = asyncio.Event()
        self.last_error: str | None = None

    async def start(self) -> None:
        """On promotion: orders left SUBMITTING by a dead owner have an unknown outcome."""
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            stuck = (await s.scalars(select(Order).where(Order.status == S.SUBMITTING.value))).all()
            for o in stuck:
                result = await s.execute(update(Order).where(Order.id == o.id, Order.version == o.version).values(
                    status=S.UNKNOWN.value, updated_at=now, version=o.version + 1))
                if result.rowcount != 1:
                    continue
                self.audit.add(s, "order_outcome_unknown", o.correlation_id,
                               {"order_id": o.id, "reason": "found SUBMITTING at start (previous owner stopped)"})
        if stuck:
            log.warning("orders_recovered_unknown", count=len(stuck))
            self.reconcile_soon.set()
        self._task = asyncio.create_task(self._run(), name="order-executor")
        self.orders.wakeup.set()

    async def stop(self) -> None:
        """Stop claiming. Submits still waiting for a token or a pacing slot are put back in the queue (KIS
        never saw them); submits already sent get one shared deadline to hear KIS's answer."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        for task in list(self._inflight):
            if task not in self._on_wire:
                task.cancel()
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=STOP_ANSWER_WAIT_S)
        for task in list(self._inflight):
            # Still no answer: cancelled on the wire, the order stays SUBMITTING and the next owner treats
            # its outcome as unknown (reconciliation, never a resubmit).
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.orders.wakeup.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self.orders.wakeup.clear()
            try:
                await self._drain()
            except Exception as err:  # the queue is durable: log, and try again on the next tick
                self.last_error = f"{type(err).__name__}: {err}"[:200]
                log.exception("executor_drain_failed")

    async def _drain(self) -> None:
        while True:
            free = CONCURRENCY - len(self._inflight)
            if free <= 0:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                continue
            today = self.orders.trade_date()
            async with self.sessions() as s:
                stale = (await s.scalars(select(Order).where(Order.status == S.ACCEPTED.value,
                                                             Order.trade_date < today))).all()
                batch = (await s.scalars(select(Order).where(Order.status == S.ACCEPTED.value,
                                                             Order.trade_date == today)
                                         .order_by(Order.created_at).limit(free))).all()
            for o in stale:
                await self._set(o, "expire", {"cancelled_qty": o.qty - o.filled_qty, "reject_code": "EXPIRED_UNSENT",
                                              "reject_message": f"accepted on {o.trade_date} and never sent; a day "
                                                                "order does not carry over to the next trading day"},
                                "order_expired", {"reason": "unsent at the end of its trading day"})
            if not batch:
                return
            if await self.orders.kill_switch.is_active():
                return  # queued orders wait; the switch blocks every broker call
            for o in batch:
                self.inflight_ids.add(o.id)  # before the claim commits: reconciliation must not see it as unknown
                try:
                    claimed = await self._claim(o)
                except BaseException:
                    self.inflight_ids.discard(o.id)
                    raise
                if claimed is None:
                    self.inflight_ids.discard(o.id)
                    continue
                task = asyncio.create_task(self._submit_tracked(claimed))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
                task.add_done_callback(self._on_wire.discard)

    async def _claim(self, o: Order) -> Order | None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            result = await s.execute(update(Order).where(Order.id == o.id, Order.status == S.ACCEPTED.value,
                                                         Order.version == o.version)
                                     .values(status=S.SUBMITTING.value, submit_started_at=now, updated_at=now,
                                             version=o.version + 1))
            if result.rowcount != 1:
                return None
            self.audit.add(s, "order_submitting", o.correlation_id, {"order_id": o.id})
            return await s.get(Order, o.id)

    async def _submit_tracked(self, o: Order) -> None:
        try:
            await self._submit(o)
        except Exception as err:  # a task's error would otherwise vanish; the order stays for reconciliation
            self.last_error = f"{type(err).__name__}: {err}"[:200]
            log.exception("order_submit_failed", order_id=o.id)
            self.reconcile_soon.set()
        finally:
            self.inflight_ids.discard(o.id)

    async def _submit(self, o: Order) -> None:
        broker = self.orders.broker
        assert broker is not None
        account = self.orders.accounts.resolve(o.account_no).ref
        task = asyncio.current_task()
        try:
            ack = await broker.place_cash(account, o.symbol, o.side, o.order_type, o.qty, o.price,
                                          on_wire=lambda: self._on_wire.add(task))  # type: ignore[arg-type]
        except asyncio.CancelledError:
            if task not in self._on_wire:
                # Stopped while waiting for a token or a slot: nothing left for KIS, so back to the queue.
                await self._set(o, "submit_not_processed", {"submit_started_at": None}, "order_submit_deferred",
                                {"code": "EXECUTOR_STOPPED"})
            raise
        except NOT_PROCESSED as err:
            await self._set(o, "submit_not_processed", {"submit_started_at": None}, "order_submit_deferred",
                            {"code": err.code})
            self.orders.wakeup.set()
            return
        except CONFIG_ERRORS as err:
            # KIS refused before acting, and retrying cannot help: reject rather than hold the queue.
            await self._set(o, "submit_rejected", {"reject_code": err.code, "reject_message": err.message[:300]},
                            "order_rejected", {"code": err.code, "message": err.message})
            self.orders.metrics.rejects_by_code[err.code] += 1
            return
        except (KisBusinessError, KisRequestError) as err:
            await self._set(o, "submit_rejected", {"reject_code": err.code, "reject_message": err.message[:300]},
                            "order_rejected", {"code": err.code, "message": err.message})
            self.orders.metrics.rejects_by_code[err.code] += 1
            return
        except KisError as err:
            await self._set(o, "submit_unknown", {}, "order_outcome_unknown",
                            {"code": err.code, "message": err.message})
            self.reconcile_soon.set()
            return
        self.orders.metrics.record_latency(ack.latency_ms)  # KIS round trip, not time spent in the queue
        now = self.clock.now()
        async with self._notice_lock:
            async with self.sessions() as s, s.begin():
                current = await s.get(Order, o.id)
                assert current is not None
                values = {"broker_order_no": ack.order_no, "broker_branch": ack.branch,
                          "broker_order_time": ack.order_time}
                if current.status in (S.SUBMITTING.value, S.UNKNOWN.value):
                    new = next_state(current.status, "submit_ack", current.filled_qty)
                    await s.execute(update(Order).where(Order.id == o.id).values(
                        status=new.value, updated_at=now, version=current.version + 1, **values))
                else:  # a fill notice (or reconciliation) got here first and already moved it on
                    await s.execute(update(Order).where(Order.id == o.id).values(
                        updated_at=now, version=current.version + 1, **values))
                if await s.get(BrokerOrderRef, ack.order_no) is None:
                    s.add(BrokerOrderRef(broker_order_no=ack.order_no, order_id=o.id, kind="new", created_at=now))
                self.audit.add(s, "order_submitted", o.correlation_id,
                               {"order_id": o.id, "broker_order_no": ack.order_no, "order_time": ack.order_time})
            early = self._early.pop(ack.order_no, [])
            for _, notice in early:
                await self._apply_notice(notice, o.id)

    async def _set(self, o: Order, event: str, values: dict[str, Any], audit_type: str,
                   payload: dict[str, Any]) -> None:
        """Apply ``event`` to the order as it is now: compare-and-set on its version, re-read on a race."""
        for _ in range(5):
            now = self.clock.now()
            async with self.sessions() as s, s.begin():
                current = await s.get(Order, o.id)
                assert current is not None
                try:
                    new = next_state(current.status, event, current.filled_qty)
                except InvalidTransition:
                    # Someone who knew more (a notice, reconciliation) already moved the order on.
                    log.warning("order_event_superseded", order_id=o.id, event=event, status=current.status)
                    return
                result = await s.execute(update(Order).where(Order.id == o.id, Order.version == current.version)
                                         .values(status=new.value, updated_at=now, version=current.version + 1,
                                                 **values))
                if result.rowcount != 1:
                    continue  # changed between our read and our write: read again
                self.audit.add(s, audit_type, o.correlation_id, {"order_id": o.id, "from": current.status,
                                                                 "to": new.value, **payload})
                return
        raise RuntimeError(f"order {o.id} kept changing; {event} not applied")

    # --- execution notices ---------------------------------------------------------------------------

    def on_notice(self, tr_id: str, plaintext: str) -> None:
        notice = parse_notice(plaintext)
        if notice is None:
            log.warning("notice_unparsed", tr_id=tr_id, fields=len(plaintext.split("^")))
            return
        asyncio.get_running_loop().create_task(self.handle_notice(notice))

    async def handle_notice(self, notice: BrokerNotice) -> None:
        async with self._notice_lock:
            async with self.sessions() as s:
                ref = await s.get(BrokerOrderRef, notice.order_no)
            if ref is None:
                # Before the submit's answer (or not ours): keep it a while.
                now = time.monotonic()
                self._early[notice.order_no].append((now, notice))
                for odno in [k for k, v in self._early.items() if v and now - v[-1][0] > EARLY_NOTICE_TTL_S]:
                    del self._early[odno]
                return
            await self._apply_notice(notice, ref.order_id)

    async def _apply_notice(self, notice: BrokerNotice, order_id: str) -> None:
        if notice.refused:
            log.warning("notice_refused", order_id=order_id, broker_order_no=notice.order_no)
            return
        if not notice.is_fill:
            return  # acks: the REST answer already moved the order; reconciliation covers the rest
        seq_key = f"{notice.order_no}:{notice.time}:{notice.qty}:{notice.price}"
        self._fill_seq[seq_key] += 1
        await self.record_fill(order_id, notice.order_no, notice.qty, notice.price, notice.time, "notice",
                               f"notice:{seq_key}:{self._fill_seq[seq_key]}")

    async def record_fill(self, order_id: str, broker_order_no: str, qty: int, price: int, fill_time: str,
                          source: str, dedupe_key: str, expect_filled: int | None = None) -> bool:
        """Add a fill and move the order on, atomically; False if it was already recorded or does not apply.

        ``expect_filled``: the order's filled quantity the caller computed ``qty`` from (reconciliation); if
        fills were recorded meanwhile the fill is not added — the caller's arithmetic is stale.
        """
        for _ in range(5):
            outcome = await self._record_fill_once(order_id, broker_order_no, qty, price, fill_time, source,
                                                   dedupe_key, expect_filled)
            if outcome is not None:
                return outcome
        raise RuntimeError(f"order {order_id} kept changing; fill {dedupe_key} not recorded")

    async def _record_fill_once(self, order_id: str, broker_order_no: str, qty: int, price: int, fill_time: str,
                                source: str, dedupe_key: str, expect_filled: int | None) -> bool | None:
        now = self.clock.now()
        try:
            async with self.sessions() as s, s.begin():
                o = await s.get(Order, order_id)
                if o is None or qty <= 0:
                    return False
                if expect_filled is not None and o.filled_qty != expect_filled:
                    log.info("fill_superseded", order_id=order_id, expected=expect_filled, filled=o.filled_qty)
                    self.reconcile_soon.set()
                    return False
                if o.filled_qty + qty > o.qty:
                    log.warning("fill_exceeds_order", order_id=order_id, qty=qty)
                    self.reconcile_soon.set()
                    return False
                s.add(Fill(order_id=order_id, broker_order_no=broker_order_no, qty=qty, price=price,
                           fill_time=fill_time, source=source, dedupe_key=dedupe_key, correlation_id=o.correlation_id,
                           created_at=now))
                filled = o.filled_qty + qty
                if filled + o.cancelled_qty >= o.qty and S(o.status) not in TERMINAL:
                    new = next_state(o.status, "fully_filled", filled)
                elif S(o.status) in TERMINAL:
                    new = S(o.status)
                else:
                    new = next_state(o.status, "fill", filled)
                result = await s.execute(update(Order).where(Order.id == order_id, Order.version == o.version).values(
                    filled_qty=filled, filled_amount=o.filled_amount + qty * price, status=new.value,
                    updated_at=now, version=o.version + 1))
                if result.rowcount != 1:
                    raise _Retry  # changed since we read it (a concurrent fill or transition): roll back, retry
                self.audit.add(s, "order_fill", o.correlation_id, {
                    "order_id": order_id, "broker_order_no": broker_order_no, "qty": qty, "price": price,
                    "filled_qty": filled, "status": new.value, "source": source})
            return True
        except _Retry:
            return None
        except IntegrityError:
            return False  # the same fill twice


class _Retry(Exception):
    """Roll back a transaction whose compare-and-set lost a race, and try again."""
