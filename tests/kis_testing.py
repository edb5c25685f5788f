"""Shared test support: a simulator on loopback per test case, and condition waits with deadlines.

Importable as ``kis_testing`` under both pytest and ``python -m unittest discover -s tests``.
"""

from __future__ import annotations

import asyncio
import json
import time
import unittest
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import websockets

from kis.sim.engine import SimConfig
from kis.sim.server import SimServer

APP_KEY = "PSk" + "x" * 33  # 36 chars, like a real app key
APP_SECRET = "s" * 180
CANO, PRDT = "12345678", "01"


async def wait_until(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0,  # noqa: ASYNC109
                     interval: float = 0.01, message: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds. Never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


class SimTestCase(unittest.IsolatedAsyncioTestCase):
    """Starts a fresh simulator on 127.0.0.1 for each test; override ``sim_config`` to change it."""

    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.02)

    async def asyncSetUp(self) -> None:
        # IsolatedAsyncioTestCase runs its loop in debug mode, which makes busy sockets crawl.
        asyncio.get_running_loop().set_debug(False)
        self.server = SimServer(self.sim_config())
        await self.server.start()
        self.sim = self.server.sim
        self.http = httpx.AsyncClient(base_url=self.server.rest_url, timeout=10.0)
        self._token: str | None = None

    async def asyncTearDown(self) -> None:
        await self.http.aclose()
        await self.server.stop()

    async def token(self, app_key: str = APP_KEY, app_secret: str = APP_SECRET) -> str:
        if self._token is None or app_key != APP_KEY:
            r = await self.http.post("/oauth2/tokenP", json={
                "grant_type": "client_credentials", "appkey": app_key, "appsecret": app_secret})
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
            if app_key != APP_KEY:
                return token
            self._token = token
        return self._token

    async def headers(self, tr_id: str, **extra: str) -> dict[str, str]:
        return {"content-type": "application/json; charset=utf-8", "authorization": f"Bearer {await self.token()}",
                "appkey": APP_KEY, "appsecret": APP_SECRET, "tr_id": tr_id, "custtype": "P", **extra}

    async def approval_key(self, app_key: str = APP_KEY, app_secret: str = APP_SECRET) -> str:
        r = await self.http.post("/oauth2/Approval", json={
            "grant_type": "client_credentials", "appkey": app_key, "secretkey": app_secret})
        assert r.status_code == 200, r.text
        return r.json()["approval_key"]

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = await self.http.request(method, f"/__sim{path}", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def ws_connect(self, path: str = "/tryitout") -> Any:
        return websockets.connect(self.server.ws_url + path, ping_interval=None, max_size=2**22)


def subscribe_msg(approval_key: str, tr_id: str, tr_key: str, tr_type: str = "1") -> str:
    return json.dumps({"header": {"approval_key": approval_key, "custtype": "P", "tr_type": tr_type,
                                  "content-type": "utf-8"},
                       "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}})


class GatewayTestCase(SimTestCase):
    """A simulator plus a real gateway (uvicorn on a free loopback port) pointed at it.

    The gateway treats the simulator as its embedded market (its session is the market's session), uses
    a fresh SQLite file per test, and ``self.gw`` is an httpx client on the gateway. Override
    ``gateway_env`` to add settings (names as the environment variables, e.g. KIS_MARKET_OVERRIDE).
    """

    def gateway_env(self) -> dict[str, str]:
        return {}

    def gateway_clock(self) -> Any:
        """The gateway's clock (default: the system clock); a test that crosses a trading day shifts one."""
        return None

    async def asyncSetUp(self) -> None:
        import socket
        import tempfile

        import uvicorn

        from kis.config import Settings
        from kis.gateway.app import create_app

        await super().asyncSetUp()
        self._tmp = tempfile.TemporaryDirectory()
        env = {"KIS_ENV": "sim", "KIS_APP_KEY": APP_KEY, "KIS_APP_SECRET": APP_SECRET,
               "KIS_ACCOUNT_NO": f"{CANO}-{PRDT}", "KIS_DB_URL": f"sqlite:///{self._tmp.name}/gw.db",
               "KIS_STATE_DIR": f"{self._tmp.name}/state", "KIS_WS_SYMBOLS": "005930,000660",
               **self.gateway_env()}
        settings = Settings(**{k.lower(): v for k, v in env.items()})
        self.app = create_app(settings, clock=self.gateway_clock(), configure_logs=False, sim_server=self.server)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._gw_server = uvicorn.Server(uvicorn.Config(self.app, log_config=None, access_log=False,
                                                        lifespan="on"))
        self._gw_task = asyncio.create_task(self._gw_server.serve(sockets=[sock]))
        await wait_until(lambda: self._gw_server.started or self._gw_task.done(), 15, message="gateway start")
        if self._gw_task.done():
            self._gw_task.result()
        self.gw = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10.0)
        self.runtime = self.app.state.runtime

    async def asyncTearDown(self) -> None:
        await self.gw.aclose()
        self._gw_server.should_exit = True
        await asyncio.wait_for(self._gw_task, 15)
        await super().asyncTearDown()
        self._tmp.cleanup()

    async def quote_metrics(self) -> dict[str, Any]:
        r = await self.gw.get("/v1/metrics/quote")
        assert r.status_code == 200, r.text
        return r.json()


class JsonLogCapture:
    """The product's JSON log stream (structlog through stdlib logging), captured until ``close()``.

    Start it before the gateway so start-up stage logs (``ws_worker_start``, ``ws_connect``…) are kept.
    """

    def __init__(self, level: str = "INFO") -> None:
        import io
        import logging

        from kis.logs import configure_logging

        self.stream = io.StringIO()
        root = logging.getLogger()
        self._saved = (root.handlers[:], root.level)
        configure_logging(level, stream=self.stream)

    def close(self) -> None:
        import logging

        root = logging.getLogger()
        root.handlers[:], level = self._saved
        root.setLevel(level)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.stream.getvalue().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                out.append(event)
        return out

    def names(self) -> list[str]:
        return [str(e.get("event", "")) for e in self.events()]


# --- PostgreSQL: a fresh database per test class (CI starts the server; unreachable = the tests fail) ---

PG_ADMIN_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def pg_admin_url() -> str:
    """The maintenance connection that creates and drops test databases (KIS_TEST_PG_ADMIN_URL overrides)."""
    import os

    return os.environ.get("KIS_TEST_PG_ADMIN_URL", PG_ADMIN_URL_DEFAULT)


def _pg_database_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)


async def _pg_admin_connect() -> Any:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(pg_admin_url())
    try:
        return await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                                     password=u.password, database=u.database or "postgres", timeout=10)
    except (OSError, asyncpg.PostgresError) as err:
        # Not a skip: CI starts PostgreSQL, so a missing server is a broken environment, reported loudly.
        raise RuntimeError(f"PostgreSQL is required for this test and is unreachable at "
                           f"{u.render_as_string(hide_password=True)}: {type(err).__name__}: {err}") from err


async def create_pg_database(prefix: str = "kis_t_") -> str:
    """CREATE DATABASE <prefix><random>; returns its plain URL (postgresql://…/<name>)."""
    import uuid

    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    conn = await _pg_admin_connect()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _pg_database_url(name)


async def _terminate_pg_backends(conn: Any, name: str) -> None:
    await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = $1 AND pid <> pg_backend_pid()", name)


async def drop_pg_database(url: str) -> None:
    """Terminate every connection to the database, then DROP it (no-op if it is already gone)."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    assert name and name.startswith("kis_t"), f"refusing to drop a database not made by the tests: {name!r}"
    conn = await _pg_admin_connect()
    try:
        await _terminate_pg_backends(conn, name)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def reset_pg_database(url: str) -> None:
    """Empty a test database between tests: drop its public schema (tables, triggers, functions) and recreate it.

    The append-only triggers refuse TRUNCATE/DELETE on event_log, so the schema goes as a whole.
    """
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    assert u.database and u.database.startswith("kis_t"), f"refusing to reset {u.database!r}"
    admin = await _pg_admin_connect()
    try:
        await _terminate_pg_backends(admin, u.database)
    finally:
        await admin.close()
    conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                                 password=u.password, database=u.database, timeout=10)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


def _run_coro(coro: Any) -> Any:
    """Run ``coro`` from synchronous code (setUpClass, setUp) on a loop of its own, in a helper thread.

    A thread keeps the caller's event-loop state alone (IsolatedAsyncioTestCase has already set its loop).
    """
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as err:
            box["error"] = err

    t = threading.Thread(target=target, name="pg-fixture")
    t.start()
    t.join(120)
    if t.is_alive():
        raise AssertionError("PostgreSQL fixture did not finish within 120 s")
    if "error" in box:
        raise box["error"]
    return box.get("result")


class PostgresDatabaseMixin:
    """A fresh PostgreSQL database for the test class, dropped after it: ``cls.pg_url`` (postgresql://…).

    Put it first in the bases (``class T(PostgresDatabaseMixin, SomeTestCase)``). With ``pg_reset_each_test``
    the database is emptied before every test (for tests that need a pristine schema, like the order tests).
    A PostgreSQL server that cannot be reached fails the class in setUpClass; it is never skipped.
    """

    pg_url: str
    pg_reset_each_test = False

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        url = _run_coro(create_pg_database())
        cls.pg_url = url
        cls.addClassCleanup(lambda: _run_coro(drop_pg_database(url)))  # type: ignore[attr-defined]

    def setUp(self) -> None:
        if self.pg_reset_each_test:
            _run_coro(reset_pg_database(self.pg_url))
        super().setUp()  # type: ignore[misc]
