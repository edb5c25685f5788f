"""Database engines from ``KIS_DB_URL``: SQLite (WAL, busy timeout) by default, PostgreSQL when set."""

from __future__ import annotations

import asyncio

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 5_000
MIGRATION_BUSY_TIMEOUT_MS = 120_000  # a second migrator waits for the first instead of failing


def async_url(url: str) -> str:
    """Map the plain URLs operators write to their asyncio drivers."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def create_engine(url: str, *, migrations: bool = False) -> AsyncEngine:
    """An async engine for ``url``.

    ``migrations=True`` (Alembic's env only) makes every transaction atomic and exclusive on SQLite:
    the driver's implicit transaction handling is switched off and ``BEGIN IMMEDIATE`` is sent instead, so
    DDL runs inside the transaction (a failed migration leaves nothing half-built) and two processes
    migrating one file at once take turns instead of racing each other's CREATE TABLEs.
    """
    aurl = async_url(url)
    if aurl.startswith("sqlite"):
        busy_ms = MIGRATION_BUSY_TIMEOUT_MS if migrations else SQLITE_BUSY_TIMEOUT_MS
        engine = create_async_engine(aurl, connect_args={"timeout": busy_ms / 1000})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers and one writer work at once (seed 003's "DB locked" incident).
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL (fsync per commit): an accepted order must survive power loss too, not only kill -9.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            # Batch migrations rebuild tables (copy, drop, rename), which enforced foreign keys would
            # refuse; the migration env checks every key with PRAGMA foreign_key_check before committing.
            cur.execute("PRAGMA foreign_keys=OFF" if migrations else "PRAGMA foreign_keys=ON")
            cur.close()
            if migrations:
                dbapi_conn.isolation_level = None  # no implicit BEGIN/COMMIT around DDL from the driver

        if migrations:
            @event.listens_for(engine.sync_engine, "begin")
            def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(aurl, pool_pre_ping=True)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


def writer_lock(engine: AsyncEngine) -> asyncio.Lock | _NoLock:
    """An in-process queue for write transactions on SQLite (a single-writer database); none elsewhere."""
    return asyncio.Lock() if engine.dialect.name == "sqlite" else _NoLock()
