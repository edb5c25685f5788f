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


async def wait_until(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0,
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
        self.app = create_app(settings, configure_logs=False, sim_server=self.server)
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
