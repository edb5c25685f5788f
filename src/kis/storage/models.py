"""Tables. Each schema change comes with an Alembic migration in ``migrations/versions``.

Column names of ``system_state`` and ``event_log`` are fixed by the Phase 0 runbook (seed 003), whose
SQL operators may type by hand; everything else is ours.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = "0002"

# SQLite autoincrement needs INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class SessionLease(Base):
    """Who owns the one KIS session: a row per lease name, held until ``expires_at`` unless renewed."""

    __tablename__ = "session_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    account_alias: Mapped[str] = mapped_column(String(64))
    account_no: Mapped[str] = mapped_column(String(16))  # CANO-ACNT_PRDT_CD; masked in every answer
    env: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(12))
    side: Mapped[str] = mapped_column(String(4))  # BUY / SELL
    order_type: Mapped[str] = mapped_column(String(8))  # LIMIT / MARKET
    qty: Mapped[int] = mapped_column(Integer)
    price: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    strategy_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    broker_order_no: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    broker_branch: Mapped[str | None] = mapped_column(String(10), nullable=True)
    broker_order_time: Mapped[str | None] = mapped_column(String(6), nullable=True)
    filled_qty: Mapped[int] = mapped_column(Integer, default=0)
    filled_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    cancelled_qty: Mapped[int] = mapped_column(Integer, default=0)
    pending_qty: Mapped[int | None] = mapped_column(Integer, nullable=True)  # modify/cancel in flight
    pending_price: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reject_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reject_message: Mapped[str | None] = mapped_column(String(300), nullable=True)
    trade_date: Mapped[str] = mapped_column(String(8))  # KST YYYYMMDD of acceptance
    submit_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    git_commit_sha: Mapped[str | None] = mapped_column(String(40), nullable=True)
    schema_version: Mapped[str | None] = mapped_column(String(10), nullable=True)

    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_orders_idempotency_key"),
        Index("ix_orders_account_date", "account_no", "trade_date"),
    )


class BrokerOrderRef(Base):
    """Every KIS order number an order has had (a modify gets a new ODNO): notices map back through it."""

    __tablename__ = "broker_order_refs"

    broker_order_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # new / modify / cancel
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DailyUsage(Base):
    """Orders accepted per account and KST trading day: the daily limits are enforced by one atomic UPDATE."""

    __tablename__ = "daily_usage"

    account_no: Mapped[str] = mapped_column(String(16), primary_key=True)
    trade_date: Mapped[str] = mapped_column(String(8), primary_key=True)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    notional: Mapped[int] = mapped_column(BigInteger, default=0)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status_code: Mapped[int] = mapped_column(Integer)
    response_json: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Fill(Base):
    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    broker_order_no: Mapped[str] = mapped_column(String(20))
    qty: Mapped[int] = mapped_column(Integer)
    price: Mapped[int] = mapped_column(BigInteger)
    fill_time: Mapped[str] = mapped_column(String(6))  # KST HHMMSS as KIS reports it
    source: Mapped[str] = mapped_column(String(20))  # notice / reconcile
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    correlation_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SystemState(Base):
    """Kill switch history: the latest row wins; no row at all means ACTIVE (seed 003)."""

    __tablename__ = "system_state"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    timestamp: Mapped[str] = mapped_column(String(40))
    kill_switch_status: Mapped[str] = mapped_column(String(16))  # active / inactive
    kill_switch_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    changed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class EventLog(Base):
    """Append-only audit log; UPDATE and DELETE are refused by database triggers."""

    __tablename__ = "event_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    timestamp: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    payload_json: Mapped[str] = mapped_column(Text)
    git_commit_sha: Mapped[str | None] = mapped_column(String(40), nullable=True)
    schema_version: Mapped[str | None] = mapped_column(String(10), nullable=True)
    config_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Snapshot(Base):
    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(200))
    payload_json: Mapped[str] = mapped_column(Text)
    correlation_id: Mapped[str] = mapped_column(String(64))
    git_commit_sha: Mapped[str | None] = mapped_column(String(40), nullable=True)
    schema_version: Mapped[str | None] = mapped_column(String(10), nullable=True)


class Proposal(Base):
    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending/approved/rejected/executed
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(12))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[int] = mapped_column(Integer)
    price: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    params_json: Mapped[str] = mapped_column(Text)
    config_hash: Mapped[str] = mapped_column(String(64))
    rejected_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    rejection_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    git_commit_sha: Mapped[str | None] = mapped_column(String(40), nullable=True)
    schema_version: Mapped[str | None] = mapped_column(String(10), nullable=True)


class Approval(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # approved / rejected
    decided_by: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    token_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    correlation_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
