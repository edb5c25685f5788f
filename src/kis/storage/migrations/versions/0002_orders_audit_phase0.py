"""orders, idempotency keys, fills, kill switch, append-only event_log, Phase 0 tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", _ID, primary_key=True, autoincrement=True)


def _provenance() -> list[sa.Column]:
    return [sa.Column("git_commit_sha", sa.String(40)), sa.Column("schema_version", sa.String(10))]


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("account_alias", sa.String(64), nullable=False),
        sa.Column("account_no", sa.String(16), nullable=False),
        sa.Column("env", sa.String(8), nullable=False),
        sa.Column("symbol", sa.String(12), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("price", sa.BigInteger),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("strategy_id", sa.String(100)),
        sa.Column("correlation_id", sa.String(64), nullable=False, index=True),
        sa.Column("broker_order_no", sa.String(20), index=True),
        sa.Column("broker_branch", sa.String(10)),
        sa.Column("broker_order_time", sa.String(6)),
        sa.Column("filled_qty", sa.Integer, nullable=False, server_default="0"),
        sa.Column("filled_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cancelled_qty", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pending_qty", sa.Integer),
        sa.Column("pending_price", sa.BigInteger),
        sa.Column("reject_code", sa.String(40)),
        sa.Column("reject_message", sa.String(300)),
        sa.Column("trade_date", sa.String(8), nullable=False),
        sa.Column("submit_started_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        *_provenance(),
        sa.UniqueConstraint("idempotency_key", name="uq_orders_idempotency_key"),
    )
    op.create_index("ix_orders_account_date", "orders", ["account_no", "trade_date"])
    op.create_table(
        "broker_order_refs",
        sa.Column("broker_order_no", sa.String(20), primary_key=True),
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "daily_usage",
        sa.Column("account_no", sa.String(16), primary_key=True),
        sa.Column("trade_date", sa.String(8), primary_key=True),
        sa.Column("order_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("notional", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(40)),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_json", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "fills",
        _id(),
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), nullable=False, index=True),
        sa.Column("broker_order_no", sa.String(20), nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("fill_time", sa.String(6), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("dedupe_key", sa.String(120), nullable=False, unique=True),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "system_state",
        _id(),
        sa.Column("timestamp", sa.String(40), nullable=False),
        sa.Column("kill_switch_status", sa.String(16), nullable=False),
        sa.Column("kill_switch_reason", sa.Text),
        sa.Column("changed_by", sa.String(100)),
    )
    op.create_table(
        "event_log",
        _id(),
        sa.Column("timestamp", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False, index=True),
        sa.Column("correlation_id", sa.String(64), nullable=False, index=True),
        sa.Column("payload_json", sa.Text, nullable=False),
        *_provenance(),
        sa.Column("config_hash", sa.String(64)),
    )
    op.create_table(
        "snapshots",
        _id(),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("payload_json", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        *_provenance(),
    )
    op.create_table(
        "proposals",
        _id(),
        sa.Column("snapshot_id", _ID, sa.ForeignKey("snapshots.id")),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("correlation_id", sa.String(64), nullable=False, index=True),
        sa.Column("symbol", sa.String(12), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("price", sa.BigInteger),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("rejected_by", sa.String(100)),
        sa.Column("rejection_reason", sa.Text),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        *_provenance(),
    )
    op.create_table(
        "approvals",
        _id(),
        sa.Column("proposal_id", _ID, sa.ForeignKey("proposals.id"), nullable=False, index=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), unique=True),
        sa.Column("token_expires_at", _TS),
        sa.Column("token_used_at", _TS),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    _append_only("event_log")


def _append_only(table: str) -> None:
    """The audit log refuses UPDATE and DELETE in the database itself, whoever connects."""
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        return
    op.execute(
        f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
    )


def downgrade() -> None:
    for table in ("approvals", "proposals", "snapshots", "event_log", "system_state", "fills",
                  "idempotency_keys", "daily_usage", "broker_order_refs", "orders"):
        op.drop_table(table)
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS event_log_append_only()")
