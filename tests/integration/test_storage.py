"""Storage contract (seed 003, DESIGN §2.2) on SQLite and on PostgreSQL, through real processes and raw SQL.

- ``python -m kis.storage.init_db`` prints exactly "Database initialized successfully", is idempotent,
  survives concurrent runs, builds every table, and fails atomically;
- ``event_log`` refuses UPDATE/DELETE (and TRUNCATE on PostgreSQL) in the database itself;
- the kill switch: no row = ACTIVE, the latest row wins, any status but ``inactive`` = ACTIVE — through
  ``KillSwitch`` and through the ``kis kill-switch`` CLI, which records who and why;
- the runbook's SQL (seed 003 §2.3/§2.5/§3.4) runs verbatim on SQLite (and translated on PostgreSQL);
- every event the code writes carries correlation_id, git_commit_sha, schema_version and config_hash.
"""

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

from kis_testing import PostgresDatabaseMixin

REPO = Path(__file__).resolve().parents[2]
SUCCESS = "Database initialized successfully\n"
SEED_TABLES = {"snapshots", "proposals", "approvals", "orders", "fills", "system_state", "event_log"}
ALL_TABLES = SEED_TABLES | {"session_lease", "broker_order_refs", "daily_usage", "idempotency_keys",
                            "alembic_version"}
SHA = re.compile(r"^([0-9a-f]{40}|unknown)$")
HEX = re.compile(r"^[0-9a-f]{16,64}$")
REASON_KO = "운영자 승인: 모의투자 환경에서 테스트 목적"

# Seed 003 §2.3 and §2.5, verbatim (SQLite).
SEED_DEACTIVATE_SQL = """
-- 1) system_state 테이블에 INACTIVE 레코드 추가
INSERT INTO system_state (
    timestamp,
    kill_switch_status,
    kill_switch_reason
) VALUES (
    datetime('now'),
    'inactive',
    '운영자 승인: 모의투자 환경에서 테스트 목적'
);

-- 2) event_log에 kill_switch_deactivated 이벤트 기록
INSERT INTO event_log (
    timestamp,
    event_type,
    correlation_id,
    payload_json
) VALUES (
    datetime('now'),
    'kill_switch_deactivated',
    'manual-kill-switch-change',
    json_object(
        'reason', '운영자 승인: 모의투자 환경에서 테스트 목적',
        'deactivated_by', 'admin'
    )
);
"""

SEED_REACTIVATE_SQL = """
INSERT INTO system_state (
    timestamp,
    kill_switch_status,
    kill_switch_reason
) VALUES (
    datetime('now'),
    'active',
    '운영자 결정: 안전을 위해 모든 거래 중단'
);
"""

# Seed 003 §3.4, with its placeholder filled in.
SEED_EVENTS_BY_CORRELATION_SQL = (  # the runbook's lines end in a space; kept
    "SELECT * FROM event_log \n"
    "WHERE correlation_id = 'manual-kill-switch-change' \n"
    "ORDER BY timestamp DESC;\n"
)

# §2.3 says other databases need the same logic in their own dialect: this is it for PostgreSQL.
PG_DEACTIVATE_SQL = """
INSERT INTO system_state (timestamp, kill_switch_status, kill_switch_reason)
VALUES (now(), 'inactive', '운영자 승인: 모의투자 환경에서 테스트 목적');
INSERT INTO event_log (timestamp, event_type, correlation_id, payload_json)
VALUES (now(), 'kill_switch_deactivated', 'manual-kill-switch-change',
        json_build_object('reason', '운영자 승인: 모의투자 환경에서 테스트 목적', 'deactivated_by', 'admin'));
"""


def kis_command() -> list[str]:
    """The installed ``kis`` script beside this interpreter (what operators type), else ``python -m kis.cli``."""
    script = Path(sys.executable).with_name("kis")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kis.cli"]


def child_env(db_url: str | None) -> dict[str, str]:
    """The environment of an operator's shell: no KIS_* settings leaking from the test run, PYTHONPATH=src."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KIS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    if db_url is not None:
        env["KIS_DB_URL"] = db_url
    return env


def run(args: list[str], db_url: str | None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=child_env(db_url), capture_output=True, text=True, timeout=120,
                          check=False)


async def arun(args: list[str], db_url: str | None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, args, db_url, cwd)


async def init_db(db_url: str) -> subprocess.CompletedProcess[str]:
    return await arun([sys.executable, "-m", "kis.storage.init_db"], db_url)


async def kill_switch_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await arun([*kis_command(), "kill-switch", *args], db_url)


class StorageContract:
    """The tests; a backend class below supplies ``db_url`` and raw (driver-level) SQL access."""

    db_url: str
    backend: str

    # --- backend hooks --------------------------------------------------------------------------------

    async def raw_execute(self, sql: str) -> None:
        """Run one statement on a plain driver connection (no SQLAlchemy, no gateway code) and commit."""
        raise NotImplementedError

    async def raw_fetch(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def tables(self) -> set[str]:
        raise NotImplementedError

    # --- helpers ------------------------------------------------------------------------------------

    async def init(self) -> None:
        r = await init_db(self.db_url)
        self.assertEqual((r.returncode, r.stdout), (0, SUCCESS), r.stderr)  # type: ignore[attr-defined]

    async def count(self, table: str) -> int:
        return int((await self.raw_fetch(f"SELECT COUNT(*) FROM {table}"))[0][0])

    async def latest_state(self) -> tuple[Any, ...]:
        rows = await self.raw_fetch("SELECT kill_switch_status, kill_switch_reason, changed_by FROM system_state "
                                    "ORDER BY id DESC LIMIT 1")
        return tuple(rows[0])

    async def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        rows = await self.raw_fetch("SELECT event_type, correlation_id, payload_json, git_commit_sha, schema_version, "
                                    "config_hash FROM event_log ORDER BY id")
        keys = ("event_type", "correlation_id", "payload_json", "git_commit_sha", "schema_version", "config_hash")
        out = [dict(zip(keys, row, strict=True)) for row in rows]
        return [e for e in out if event_type is None or e["event_type"] == event_type]

    def assert_provenance(self, event: dict[str, Any]) -> None:
        from kis.storage.models import SCHEMA_VERSION

        t: Any = self
        t.assertTrue(event["correlation_id"], event)
        t.assertRegex(event["git_commit_sha"] or "", SHA, event)
        t.assertEqual(event["schema_version"], SCHEMA_VERSION, event)
        t.assertRegex(event["config_hash"] or "", HEX, event)

    async def switch(self) -> Any:
        from kis.clock import SystemClock
        from kis.gateway.audit import Audit, Provenance, config_hash, git_commit_sha
        from kis.gateway.kill_switch import KillSwitch
        from kis.storage.db import create_engine, sessionmaker

        engine = create_engine(self.db_url)
        self.addAsyncCleanup(engine.dispose)  # type: ignore[attr-defined]
        clock = SystemClock()
        audit = Audit(clock, Provenance(git_commit_sha(), config_hash({"test": self.backend})))
        return KillSwitch(sessionmaker(engine), audit, clock)

    # --- init_db ----------------------------------------------------------------------------------------

    async def test_init_db_prints_exactly_and_is_idempotent(self) -> None:
        from kis.storage.migrate import alembic_config
        from kis.storage.models import SCHEMA_VERSION

        t: Any = self
        for _ in range(2):
            r = await init_db(self.db_url)
            t.assertEqual(r.returncode, 0, r.stderr)
            t.assertEqual(r.stdout, SUCCESS)
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config(self.db_url)).get_current_head()
        t.assertEqual(await self.raw_fetch("SELECT version_num FROM alembic_version"), [(head,)])
        t.assertEqual(head, SCHEMA_VERSION, "models.SCHEMA_VERSION must name the head migration")
        r = await arun([*kis_command(), "init-db"], self.db_url)  # the CLI spelling of the same command
        t.assertEqual((r.returncode, r.stdout), (0, SUCCESS), r.stderr)

    async def test_concurrent_init_db_all_succeed(self) -> None:
        # Gateways, init_db and the CLI all migrate at start; on a fresh database they must take turns.
        results = await asyncio.gather(*(init_db(self.db_url) for _ in range(5)))
        for r in results:
            self.assertEqual((r.returncode, r.stdout), (0, SUCCESS), r.stderr)  # type: ignore[attr-defined]
        self.assertEqual(len(await self.raw_fetch("SELECT version_num FROM alembic_version")), 1)  # type: ignore[attr-defined]

    async def test_all_tables_exist_and_match_the_models(self) -> None:
        from sqlalchemy import inspect

        from kis.storage.db import create_engine
        from kis.storage.models import Base

        t: Any = self
        await self.init()
        tables = await self.tables()
        t.assertLessEqual(ALL_TABLES, tables)
        t.assertLessEqual(set(Base.metadata.tables), tables)
        engine = create_engine(self.db_url)
        try:
            async with engine.connect() as conn:
                columns = await conn.run_sync(lambda c: {name: {col["name"] for col in inspect(c).get_columns(name)}
                                                         for name in Base.metadata.tables})
        finally:
            await engine.dispose()
        for name, table in Base.metadata.tables.items():
            with t.subTest(table=name):
                t.assertEqual(columns[name], {c.name for c in table.columns})

    async def test_failed_init_leaves_nothing_half_built(self) -> None:
        t: Any = self
        # An old Phase 0 database with a conflicting table: the migration fails, and rolls back whole.
        await self.raw_execute("CREATE TABLE proposals (id INTEGER PRIMARY KEY)")
        r = await init_db(self.db_url)
        t.assertNotEqual(r.returncode, 0)
        t.assertNotIn("successfully", r.stdout)
        t.assertTrue(r.stderr.startswith("Database initialization failed:"), r.stderr)
        t.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        t.assertEqual(await self.tables(), {"proposals"})

    # --- event_log is append-only ------------------------------------------------------------------------

    async def test_event_log_refuses_update_delete(self) -> None:
        t: Any = self
        await self.init()
        await self.raw_execute("INSERT INTO event_log (timestamp, event_type, correlation_id, payload_json) "
                               "VALUES ('2026-01-05T09:00:00+09:00', 'test_event', 'corr-append-only', '{\"a\": 1}')")
        await self.raw_execute("INSERT INTO event_log (timestamp, event_type, correlation_id, payload_json) "
                               "VALUES ('2026-01-05T09:00:01+09:00', 'test_event', 'corr-append-only', '{\"a\": 2}')")
        before = await self.raw_fetch("SELECT * FROM event_log ORDER BY id")
        t.assertEqual(len(before), 2)
        refused = ["UPDATE event_log SET event_type = 'tampered'",
                   "UPDATE event_log SET payload_json = '{}' WHERE id = (SELECT MIN(id) FROM event_log)",
                   "DELETE FROM event_log",
                   "DELETE FROM event_log WHERE correlation_id = 'corr-append-only'",
                   *self.extra_refused()]
        for sql in refused:
            with t.subTest(sql=sql):
                with t.assertRaises(Exception) as caught:
                    await self.raw_execute(sql)
                t.assertIn("append-only", str(caught.exception))
        t.assertEqual(await self.raw_fetch("SELECT * FROM event_log ORDER BY id"), before)
        # Through the application's own engine and ORM as well.
        from sqlalchemy import delete, update
        from sqlalchemy.exc import DBAPIError

        from kis.storage.db import create_engine, sessionmaker
        from kis.storage.models import EventLog

        engine = create_engine(self.db_url)
        try:
            for stmt in (update(EventLog).values(event_type="tampered"), delete(EventLog)):
                with t.subTest(orm=str(stmt).split()[0]), t.assertRaises(DBAPIError):
                    async with sessionmaker(engine)() as s, s.begin():
                        await s.execute(stmt)
        finally:
            await engine.dispose()
        t.assertEqual(await self.raw_fetch("SELECT * FROM event_log ORDER BY id"), before)

    def extra_refused(self) -> list[str]:
        return []

    # --- kill switch ---------------------------------------------------------------------------------------

    async def insert_state(self, status: str) -> None:
        escaped = status.replace("'", "''")
        await self.raw_execute("INSERT INTO system_state (timestamp, kill_switch_status, kill_switch_reason) "
                               f"VALUES ('2026-01-05 09:00:00', '{escaped}', 'test row')")

    async def test_kill_switch_semantics(self) -> None:
        t: Any = self
        await self.init()
        ks = await self.switch()
        t.assertTrue(await ks.is_active())  # no row at all: ACTIVE (fail closed)
        t.assertEqual((await ks.status())["kill_switch"], "ACTIVE")
        await self.insert_state("inactive")
        t.assertFalse(await ks.is_active())
        t.assertEqual((await ks.status())["kill_switch"], "INACTIVE")
        await self.insert_state("active")  # a later row wins
        t.assertTrue(await ks.is_active())
        t.assertEqual((await ks.status())["kill_switch"], "ACTIVE")
        for unknown in ("paused", "off", "disabled", "false", "0", "", "inactive-ish", "in active"):
            with t.subTest(status=unknown):
                await self.insert_state("inactive")
                t.assertFalse(await ks.is_active())
                await self.insert_state(unknown)
                t.assertTrue(await ks.is_active(), f"{unknown!r} must read as ACTIVE")
                t.assertEqual((await ks.status())["kill_switch"], "ACTIVE")

    async def test_kill_switch_changes_record_who_and_why(self) -> None:
        t: Any = self
        await self.init()
        ks = await self.switch()
        status = await ks.set(False, REASON_KO, "admin")
        t.assertEqual((status["kill_switch"], status["reason"], status["changed_by"]), ("INACTIVE", REASON_KO, "admin"))
        t.assertEqual(await self.latest_state(), ("inactive", REASON_KO, "admin"))
        (event,) = await self.events("kill_switch_deactivated")
        t.assertEqual(json.loads(event["payload_json"]), {"reason": REASON_KO, "deactivated_by": "admin"})
        self.assert_provenance(event)
        status = await ks.set(True, "운영자 결정: 안전을 위해 모든 거래 중단", "ops")
        t.assertEqual(status["kill_switch"], "ACTIVE")
        (event,) = await self.events("kill_switch_activated")
        t.assertEqual(json.loads(event["payload_json"]),
                      {"reason": "운영자 결정: 안전을 위해 모든 거래 중단", "activated_by": "ops"})
        self.assert_provenance(event)
        counts = (await self.count("system_state"), await self.count("event_log"))
        for reason, by in (("", "admin"), ("   ", "admin"), ("why", ""), ("why", "  ")):
            with t.subTest(reason=reason, by=by), t.assertRaises(ValueError):
                await ks.set(False, reason, by)
        t.assertEqual((await self.count("system_state"), await self.count("event_log")), counts)
        t.assertTrue(await ks.is_active())

    async def test_kill_switch_cli(self) -> None:
        t: Any = self
        # Straight on an empty database: the CLI brings the schema up itself.
        r = await kill_switch_cli(self.db_url, "status")
        t.assertEqual(r.returncode, 0, r.stderr)
        t.assertEqual(json.loads(r.stdout)["kill_switch"], "ACTIVE")

        r = await kill_switch_cli(self.db_url, "off", "--reason", REASON_KO, "--by", "admin")
        t.assertEqual(r.returncode, 0, r.stderr)
        answer = json.loads(r.stdout)
        t.assertEqual((answer["kill_switch"], answer["reason"], answer["changed_by"]), ("INACTIVE", REASON_KO, "admin"))
        t.assertEqual(await self.latest_state(), ("inactive", REASON_KO, "admin"))
        (event,) = await self.events("kill_switch_deactivated")
        t.assertEqual(json.loads(event["payload_json"]), {"reason": REASON_KO, "deactivated_by": "admin"})
        self.assert_provenance(event)

        counts = (await self.count("system_state"), await self.count("event_log"))
        bad = [("off", "--by", "admin"),  # no --reason
               ("off", "--reason", "   ", "--by", "admin"),
               ("off", "--reason", "why"),  # no --by
               ("on", "--by", "admin")]
        results = await asyncio.gather(*(kill_switch_cli(self.db_url, *args) for args in bad))
        for args, res in zip(bad, results, strict=True):
            with t.subTest(args=args):
                t.assertNotEqual(res.returncode, 0, res.stdout)
                t.assertEqual(res.stdout.strip(), "")
        t.assertEqual((await self.count("system_state"), await self.count("event_log")), counts)

        r = await kill_switch_cli(self.db_url, "status")
        t.assertEqual(json.loads(r.stdout)["kill_switch"], "INACTIVE")
        r = await kill_switch_cli(self.db_url, "on", "--reason", "장 마감 후 점검", "--by", "ops")
        t.assertEqual(r.returncode, 0, r.stderr)
        t.assertEqual(json.loads(r.stdout)["kill_switch"], "ACTIVE")
        t.assertEqual(await self.latest_state(), ("active", "장 마감 후 점검", "ops"))
        (event,) = await self.events("kill_switch_activated")
        t.assertEqual(json.loads(event["payload_json"]), {"reason": "장 마감 후 점검", "activated_by": "ops"})
        for e in await self.events():
            self.assert_provenance(e)
        # The CLI reads what hand-written SQL leaves behind, too: any unknown status reads ACTIVE.
        await self.insert_state("inactive")
        t.assertEqual(json.loads((await kill_switch_cli(self.db_url, "status")).stdout)["kill_switch"], "INACTIVE")
        await self.insert_state("maintenance")
        t.assertEqual(json.loads((await kill_switch_cli(self.db_url, "status")).stdout)["kill_switch"], "ACTIVE")


class SqliteStorageTest(StorageContract, unittest.IsolatedAsyncioTestCase):
    backend = "sqlite"

    def setUp(self) -> None:
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.path = self.dir / "kis_trading.db"
        self.db_url = f"sqlite:///{self.path}"

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def run_script(self, sql: str) -> None:
        """Run operator SQL as sqlite3 would from the runbook: one script, committed."""
        conn = self.connect()
        try:
            conn.executescript(sql)
            conn.commit()
        finally:
            conn.close()

    async def raw_execute(self, sql: str) -> None:
        conn = self.connect()
        try:
            conn.execute(sql)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    async def raw_fetch(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    async def tables(self) -> set[str]:
        rows = await self.raw_fetch("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return {r[0] for r in rows}

    async def test_default_database_file_as_in_the_runbook(self) -> None:
        # Seed 003 §1.1: `PYTHONPATH=src python -m kis.storage.init_db` creates kis_trading.db where it runs.
        r = await arun([sys.executable, "-m", "kis.storage.init_db"], None, cwd=self.dir)
        self.assertEqual((r.returncode, r.stdout), (0, SUCCESS), r.stderr)
        self.assertTrue(self.path.is_file())
        self.assertLessEqual(ALL_TABLES, await self.tables())

    async def test_seed_003_sql_verbatim(self) -> None:
        await self.init()
        ks = await self.switch()
        self.assertTrue(await ks.is_active())
        self.run_script(SEED_DEACTIVATE_SQL)
        status = await ks.status()
        self.assertEqual((status["kill_switch"], status["reason"]), ("INACTIVE", REASON_KO))
        r = await kill_switch_cli(self.db_url, "status")
        self.assertEqual(json.loads(r.stdout)["kill_switch"], "INACTIVE", r.stderr)
        (event,) = await self.events("kill_switch_deactivated")
        self.assertEqual(event["correlation_id"], "manual-kill-switch-change")
        self.assertEqual(json.loads(event["payload_json"]), {"reason": REASON_KO, "deactivated_by": "admin"})
        rows = await self.raw_fetch(SEED_EVENTS_BY_CORRELATION_SQL)  # §3.4's lookup
        self.assertEqual([row[2] for row in rows], ["kill_switch_deactivated"])

        self.run_script(SEED_REACTIVATE_SQL)
        self.assertTrue(await ks.is_active())
        self.assertEqual((await ks.status())["reason"], "운영자 결정: 안전을 위해 모든 거래 중단")
        # Rows from the runbook's SQL and from the code interleave; the latest still wins.
        await ks.set(False, "코드로 해제", "ops")
        self.assertFalse(await ks.is_active())
        self.run_script(SEED_REACTIVATE_SQL)
        self.assertTrue(await ks.is_active())
        # And the log stays append-only for hand-typed SQL too.
        conn = self.connect()
        try:
            with self.assertRaises(sqlite3.DatabaseError):
                conn.execute("DELETE FROM event_log WHERE correlation_id = 'manual-kill-switch-change'")
        finally:
            conn.close()


class PostgresStorageTest(PostgresDatabaseMixin, StorageContract, unittest.IsolatedAsyncioTestCase):
    backend = "postgresql"
    pg_reset_each_test = True

    def setUp(self) -> None:
        super().setUp()
        self.db_url = self.pg_url

    async def raw_execute(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.db_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def raw_fetch(self, sql: str) -> list[tuple[Any, ...]]:
        import asyncpg

        conn = await asyncpg.connect(self.db_url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    async def tables(self) -> set[str]:
        return {r[0] for r in await self.raw_fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

    def extra_refused(self) -> list[str]:
        return ["TRUNCATE event_log", "TRUNCATE TABLE event_log RESTART IDENTITY CASCADE"]

    async def test_runbook_sql_translated_for_postgresql(self) -> None:
        await self.init()
        ks = await self.switch()
        self.assertTrue(await ks.is_active())
        await self.raw_execute(PG_DEACTIVATE_SQL)
        status = await ks.status()
        self.assertEqual((status["kill_switch"], status["reason"]), ("INACTIVE", REASON_KO))
        (event,) = await self.events("kill_switch_deactivated")
        self.assertEqual(json.loads(event["payload_json"]), {"reason": REASON_KO, "deactivated_by": "admin"})
        rows = await self.raw_fetch(SEED_EVENTS_BY_CORRELATION_SQL)
        self.assertEqual([row[2] for row in rows], ["kill_switch_deactivated"])


if __name__ == "__main__":
    unittest.main()
