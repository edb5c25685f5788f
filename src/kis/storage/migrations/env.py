"""Alembic environment: async engines (aiosqlite / asyncpg) from the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from kis.storage.db import create_engine
from kis.storage.models import Base

config = context.config
target_metadata = Base.metadata


# Any constant shared by every migrator of one PostgreSQL database: they queue on it.
PG_MIGRATION_LOCK = 0x6B69735F6D6967  # "kis_mig"


def _run(connection: Connection) -> None:
    # The caller holds one transaction around everything (Alembic sees it as external and adds none of
    # its own): PostgreSQL's DDL is transactional, and SQLite's migration engine runs BEGIN IMMEDIATE.
    if connection.dialect.name == "postgresql":
        # Concurrent start-ups (owner + standby, or init_db beside a gateway) take turns; the version
        # table is read only after the lock, so the second one finds the schema at head.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    context.run_migrations()
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left {len(broken)} broken foreign key(s), first: {tuple(broken[0])}")


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), migrations=True)
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
