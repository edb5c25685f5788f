"""The order service: accept (idempotently, durably), read, modify, cancel.

An order is written — with its idempotency key, its share of the daily limits and an ``order_accepted``
event — in one transaction (see ``intake``) before the client hears "accepted"; only the executor then
talks to KIS.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kis.broker.errors import KisBusinessError, KisError, KisRequestError
from kis.broker.orders import KisOrderApi
from kis.clock import KST, Clock
from kis.gateway.accounts import AccountRegistry
from kis.gateway.audit import Audit
from kis.gateway.errors import ApiError
from kis.gateway.intake import Intake, OrderIntake, stored_answer, unsent_sell_qty
from kis.gateway.kill_switch import KillSwitch
from kis.gateway.order_state import TERMINAL, InvalidTransition, S, next_state
from kis.gateway.risk import OrderRequest, RiskGuard, parse_order
from kis.krx import is_on_tick
from kis.logs import get_logger, mask_account
from kis.storage.db import writer_lock
from kis.storage.models import BrokerOrderRef, DailyUsage, IdempotencyKey, Order

log = get_logger("kis.gateway.orders")

MAX_KEY_LEN = 200


@dataclass
class OrderMetrics:
    accepted: int = 0
    replays: int = 0
    rejects_by_code: Counter[str] = field(default_factory=Counter)
    broker_latency_ms: list[float] = field(default_factory=list)

    def record_latency(self, ms: float) -> None:
        self.broker_latency_ms.append(ms)
        if len(self.broker_latency_ms) > 2_000:
            del self.broker_latency_ms[:1_000]


def order_view(o: Order) -> dict[str, Any]:
    """The API's view of an order. The account number is masked; the alias is what clients sent."""
    return {
        "order_id": o.id, "status": o.status, "idempotency_key": o.idempotency_key, "account_id": o.account_alias,
        "account": mask_account(o.account_no), "symbol": o.symbol, "side": o.side, "order_type": o.order_type,
        "qty": o.qty, "price": o.price, "filled_qty": o.filled_qty,
        "avg_fill_price": round(o.filled_amount / o.filled_qty, 2) if o.filled_qty else None,
        "cancelled_qty": o.cancelled_qty, "remaining_qty": max(0, o.qty - o.filled_qty - o.cancelled_qty),
        "broker_order_no": o.broker_order_no, "strategy_id": o.strategy_id, "correlation_id": o.correlation_id,
        "reject_code": o.reject_code, "reject_message": o.reject_message, "created_at": _iso(o.created_at),
        "updated_at": _iso(o.updated_at),
    }


def _iso(when: datetime) -> str:
    # SQLite hands datetimes back without their zone (they were written in KST); PostgreSQL hands them
    # back in UTC. Answer in KST either way, so a client sees the same text whichever database is used.
    return (when if when.tzinfo else when.replace(tzinfo=KST)).astimezone(KST).isoformat()


def request_hash(req: OrderRequest) -> str:
    return hashlib.sha256(json.dumps(req.canonical(), sort_keys=True).encode()).hexdigest()


class OrderService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, accounts: AccountRegistry,
                 kill_switch: KillSwitch, risk: RiskGuard, audit: Audit, env: str, git_sha: str,
                 broker: KisOrderApi | None) -> None:
        self.sessions = sessions
        self.clock = clock
        self.accounts = accounts
        self.kill_switch = kill_switch
        self.risk = risk
        self.audit = audit
        self.env = env
        self.git_sha = git_sha
        self.broker = broker
        self.metrics = OrderMetrics()
        self.wakeup = asyncio.Event()  # set when there is work for the executor
        # SQLite has one writer at a time; queueing writers here beats SQLite's sleeping busy handler.
        self.write_lock = writer_lock(sessions.kw["bind"])
        self.is_owner = lambda: False  # replaced by the runtime: only the session owner talks to KIS
        self.intake = OrderIntake(sessions, self.write_lock, kill_switch, risk, audit, clock, env, git_sha,
                                  on_accepted=self.wakeup.set)

    def trade_date(self) -> str:
        return self.clock.now().astimezone(KST).strftime("%Y%m%d")

    def _reject(self, err: ApiError) -> ApiError:
        self.metrics.rejects_by_code[err.code] += 1
        return err

    # --- accept --------------------------------------------------------------------------------------

    async def place(self, body: Any, idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        key = (idempotency_key or "").strip()
        if not key:
            raise self._reject(ApiError(400, "IDEMPOTENCY_KEY_REQUIRED", "the Idempotency-Key header is required"))
        if len(key) > MAX_KEY_LEN:
            raise self._reject(ApiError(400, "INVALID_IDEMPOTENCY_KEY",
                                        f"Idempotency-Key is at most {MAX_KEY_LEN} chars"))
        try:
            req = parse_order(body, self.accounts)
        except ApiError as err:
            raise self._reject(err) from None
        digest = request_hash(req)
        try:
            try:
                item = await self._prepare(req)
            except ApiError:
                # Final only if the key is new: a retry of an order accepted earlier (say, before the market
                # closed) still gets that order's answer.
                async with self.sessions() as s:
                    row = await s.get(IdempotencyKey, key)
                if row is None:
                    raise
                outcome, answer = "replay", stored_answer(row, digest)
            else:
                outcome, answer = await self.intake.submit(Intake(req, key, digest, *item))
        except ApiError as err:
            raise self._reject(err) from None
        if outcome == "replay":
            self.metrics.replays += 1
        else:
            self.metrics.accepted += 1
        return answer

    async def _prepare(self, req: OrderRequest) -> tuple[int, int | None]:
        """The checks that need no transaction: (notional, the broker's sellable qty for a SELL)."""
        if self.broker is None:
            raise ApiError(503, "KIS_NOT_CONFIGURED", "no KIS endpoint/credentials: orders cannot run")
        # Sizing a MARKET order or reading holdings may call KIS: not while the kill switch is on.
        if (req.price is None or req.side == "SELL") and await self.kill_switch.is_active():
            raise ApiError(403, "KILL_SWITCH_ACTIVE", "the kill switch is ACTIVE: no orders")
        notional = await self.risk.check_order(req)
        sellable = await self.risk.sellable(req.account, req.symbol) if req.side == "SELL" else None
        return notional, sellable

    async def risk_check(self, body: Any) -> dict[str, Any]:
        """Dry-run: every guard the real order would meet, without writing or calling KIS to place it."""
        req = parse_order(body, self.accounts)
        try:
            if await self.kill_switch.is_active():
                raise ApiError(403, "KILL_SWITCH_ACTIVE", "the kill switch is ACTIVE")
            notional = await self.risk.check_order(req)
            async with self.sessions() as s:
                usage = await s.get(DailyUsage, (req.account.number, self.trade_date()))
                self.risk.check_daily(usage.order_count if usage else 0, usage.notional if usage else 0, notional)
                if req.side == "SELL":
                    held = await self.risk.sellable(req.account, req.symbol)
                    self.risk.check_holdings(req, held - await unsent_sell_qty(s, req.account.number, req.symbol))
        except ApiError as err:
            return {"allowed": False, "code": err.code, "message": err.message}
        return {"allowed": True, "code": None, "message": "all guards pass", "notional": notional,
                "limits": self.risk.limits.as_dict()}

    # --- read ------------------------------------------------------------------------------------------

    async def get(self, order_id: str) -> dict[str, Any]:
        async with self.sessions() as s:
            o = await s.get(Order, order_id)
        if o is None:
            raise ApiError(404, "ORDER_NOT_FOUND", "no order with that id")
        return order_view(o)

    async def list(self, status: str | None, account_id: str | None, limit: int) -> list[dict[str, Any]]:
        q = select(Order).order_by(Order.created_at.desc()).limit(max(1, min(limit, 500)))
        if status:
            wanted = [x.strip().upper() for x in status.split(",") if x.strip()]
            bad = [w for w in wanted if w not in S.__members__]
            if bad:
                raise ApiError(400, "INVALID_STATUS", f"unknown status {bad[0]!r}; one of {', '.join(S.__members__)}")
            q = q.where(Order.status.in_(wanted))
        if account_id:
            q = q.where(Order.account_no == self.accounts.resolve(account_id).number)
        async with self.sessions() as s:
            rows = (await s.scalars(q)).all()
        return [order_view(o) for o in rows]

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as s:
            rows = (await s.execute(select(Order.status, func.count()).group_by(Order.status))).all()
        return {status: n for status, n in rows}

    # --- modify / cancel ------------------------------------------------------------------------------

    async def _load_for_change(self, order_id: str, event: str) -> Order:
        async with self.sessions() as s:
            o = await s.get(Order, order_id)
        if o is None:
            raise ApiError(404, "ORDER_NOT_FOUND", "no order with that id")
        if S(o.status) in TERMINAL:
            raise ApiError(409, "ORDER_TERMINAL", f"order is {o.status}; it can no longer change")
        try:
            next_state(o.status, event, o.filled_qty)
        except InvalidTransition:
            raise ApiError(400, "INVALID_TRANSITION", f"cannot {event.split('_')[0]} an order in state {o.status}"
                           ) from None
        return o

    async def _transition(self, o: Order, event: str, values: dict[str, Any], audit_type: str,
                          payload: dict[str, Any]) -> Order | None:
        """Compare-and-set on (status, version): a concurrent change makes this a no-op (None)."""
        new = next_state(o.status, event, values.get("filled_qty", o.filled_qty))
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            result = await s.execute(
                update(Order).where(Order.id == o.id, Order.version == o.version)
                .values(status=new.value, updated_at=now, version=o.version + 1, **values))
            if result.rowcount != 1:
                return None
            self.audit.add(s, audit_type, o.correlation_id, {"order_id": o.id, "from": o.status, "to": new.value,
                                                             **payload})
        async with self.sessions() as s:
            return await s.get(Order, o.id)

    def _require_broker(self) -> KisOrderApi:
        if self.broker is None or not self.is_owner():
            raise ApiError(503, "SESSION_STANDBY", "this gateway does not own the KIS session", retryable=True)
        return self.broker

    async def modify(self, order_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_REQUEST", "body must be a JSON object")
        o = await self._load_for_change(order_id, "modify_request")
        if o.order_type != "LIMIT":
            raise ApiError(400, "INVALID_TRANSITION", "only LIMIT orders can be modified; cancel a MARKET order")
        price = body.get("price")
        if isinstance(price, bool) or not isinstance(price, int) or price <= 0 or not is_on_tick(price):
            raise ApiError(400, "INVALID_PRICE", "price must be a positive integer on the KRX tick grid")
        remaining = o.qty - o.filled_qty - o.cancelled_qty
        qty = body.get("qty")
        # A modify re-prices everything still open (KIS QTY_ALL_ORD_YN=Y): one order keeps one price here.
        if qty is not None and (isinstance(qty, bool) or not isinstance(qty, int) or qty not in (o.qty, remaining)):
            raise ApiError(400, "INVALID_QTY", f"a modify re-prices the whole remaining quantity ({remaining}); "
                                               f"qty may only be the order's qty ({o.qty}) or what remains "
                                               f"({remaining}). Cancel to reduce.")
        if price == o.price:
            return order_view(o)  # already at that price (a retried modify): nothing to send to KIS
        broker = self._require_broker()
        with_kill = await self.kill_switch.is_active()
        if with_kill:
            raise ApiError(403, "KILL_SWITCH_ACTIVE", "the kill switch is ACTIVE: no broker calls")
        pending = await self._transition(o, "modify_request", {"pending_price": price}, "order_modify_requested",
                                         {"price": price})
        if pending is None:
            raise ApiError(409, "CONCURRENT_CHANGE", "the order changed meanwhile; read it and retry", retryable=True)
        try:
            ack = await broker.revise(_account(self, pending), pending.broker_branch or "",
                                      pending.broker_order_no or "", "LIMIT", price, None, cancel=False)
        except (KisBusinessError, KisRequestError) as err:
            await self._transition(pending, "modify_failed", {"pending_price": None}, "order_modify_rejected",
                                   {"code": err.code, "message": err.message})
            raise ApiError(409, "BROKER_REJECTED", f"KIS refused the modify: {err.code} {err.message}") from None
        except KisError as err:
            # Outcome unknown: stay MODIFY_PENDING; reconciliation decides.
            log.warning("order_modify_unknown", order_id=o.id, code=err.code)
            raise ApiError(202, "MODIFY_OUTCOME_UNKNOWN", "KIS did not answer; reconciliation will settle it",
                           retryable=False, extra={"order_id": o.id, "status": pending.status}) from None
        async with self.sessions() as s, s.begin():
            s.add(BrokerOrderRef(broker_order_no=ack.order_no, order_id=o.id, kind="modify",
                                 created_at=self.clock.now()))
        done = await self._transition(pending, "modify_done", {"price": price, "pending_price": None,
                                                               "broker_order_no": ack.order_no},
                                      "order_modified", {"price": price, "broker_order_no": ack.order_no})
        return order_view(done or pending)

    async def cancel(self, order_id: str) -> dict[str, Any]:
        o = await self._load_for_change(order_id, "cancel_request")
        if o.status == S.ACCEPTED:
            done = await self._transition(o, "cancel_request", {"cancelled_qty": o.qty - o.filled_qty},
                                          "order_cancelled", {"reason": "cancelled before submission"})
            if done is not None:
                return order_view(done)
            o = await self._load_for_change(order_id, "cancel_request")  # the executor took it meanwhile
        broker = self._require_broker()
        pending = await self._transition(o, "cancel_request", {}, "order_cancel_requested", {})
        if pending is None:
            raise ApiError(409, "CONCURRENT_CHANGE", "the order changed meanwhile; read it and retry", retryable=True)
        try:
            ack = await broker.revise(_account(self, pending), pending.broker_branch or "",
                                      pending.broker_order_no or "", pending.order_type, None, None, cancel=True)
        except (KisBusinessError, KisRequestError) as err:
            await self._transition(pending, "cancel_failed", {}, "order_cancel_rejected",
                                   {"code": err.code, "message": err.message})
            raise ApiError(409, "BROKER_REJECTED", f"KIS refused the cancel: {err.code} {err.message}") from None
        except KisError as err:
            log.warning("order_cancel_unknown", order_id=o.id, code=err.code)
            raise ApiError(202, "CANCEL_OUTCOME_UNKNOWN", "KIS did not answer; reconciliation will settle it",
                           extra={"order_id": o.id, "status": pending.status}) from None
        async with self.sessions() as s, s.begin():
            s.add(BrokerOrderRef(broker_order_no=ack.order_no, order_id=o.id, kind="cancel",
                                 created_at=self.clock.now()))
            fresh = await s.get(Order, o.id)
            assert fresh is not None
        remaining = max(0, fresh.qty - fresh.filled_qty - fresh.cancelled_qty)
        done = await self._transition(fresh, "cancel_done", {"cancelled_qty": fresh.cancelled_qty + remaining},
                                      "order_cancelled", {"cancelled_qty": remaining, "broker_order_no": ack.order_no})
        return order_view(done or fresh)

    def metrics_view(self, counts: dict[str, int]) -> dict[str, Any]:
        lat = sorted(self.metrics.broker_latency_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {
            "orders_by_state": {st: counts.get(st, 0) for st in S.__members__},
            "queue_depth": counts.get(S.ACCEPTED.value, 0),
            "unknown_count": counts.get(S.UNKNOWN.value, 0),
            "accepted": self.metrics.accepted,
            "idempotent_replays": self.metrics.replays,
            "rejects_by_code": dict(self.metrics.rejects_by_code),
            "broker_latency_ms": {"count": len(lat), "p50": pct(0.5), "p99": pct(0.99)},
        }


def _account(service: OrderService, o: Order):  # type: ignore[no-untyped-def]
    return service.accounts.resolve(o.account_no).ref

