"""The gateway's quote path under KIS faults (simulator fault switches), each checked by sources AND metrics.

Seed 000 §4: WS disconnect / silent feed / stale server session / app key in use / token expiry / REST rate
limit — quotes keep being answered (REST fallback or a clean 503 with Retry-After), and the gateway
recovers to the realtime path by itself, without looping into a ban. The last case runs real processes:
one ``kis sim`` and two ``uvicorn app.main:app`` gateways on one database (session-owner lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any

import httpx
import websockets

from kis.gateway.lease import LEASE_TTL_S
from kis.sim.engine import SimConfig
from kis_testing import (
    APP_KEY,
    APP_SECRET,
    CANO,
    PRDT,
    GatewayTestCase,
    JsonLogCapture,
    SimTestCase,
    subscribe_msg,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
OPERATOR_TOKEN = "op-" + "f" * 29
PINNED = ["H0STCNT0:000660", "H0STCNT0:005930"]  # KIS_WS_SYMBOLS=005930,000660
INQUIRE_PRICE = "FHKST01010100"


def quote_keys(keys: list[str]) -> list[str]:
    """The realtime price registrations among ``keys`` (the order path adds an execution-notice one)."""
    return sorted(k for k in keys if k.startswith("H0STCNT0:"))


class FaultGatewayCase(GatewayTestCase):
    """A gateway on a simulator with fast ticks and PINGPONGs; quotes are stale after 1 s."""

    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.02, pingpong_interval_s=1.0)

    def gateway_env(self) -> dict[str, str]:
        return {"KIS_QUOTE_FRESH_S": "1", "KIS_OPERATOR_TOKEN": OPERATOR_TOKEN}

    async def asyncSetUp(self) -> None:
        self.logs = JsonLogCapture()
        self.addCleanup(self.logs.close)
        await super().asyncSetUp()
        self.answers: list[httpx.Response] = []  # every quote answer a test saw

    async def faults(self, **values: Any) -> None:
        answer = await self.admin("POST", "/faults", values)
        for name, value in values.items():
            self.assertEqual(answer[name], value)

    async def sim_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self.admin("GET", "/stats")
        return stats

    async def quote(self, symbol: str = "005930") -> httpx.Response:
        r = await self.gw.get(f"/v1/quotes/{symbol}")
        self.answers.append(r)
        return r

    async def wait_source(self, source: str, symbol: str = "005930", within: float = 10.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def answered() -> bool:
            nonlocal last
            r = await self.quote(symbol)
            last = r.json()
            return r.status_code == 200 and last.get("source") == source

        await wait_until(answered, within, interval=0.05, message=f"{symbol} from {source} (last: {last})")
        return last

    async def wait_metrics(self, predicate: Any, within: float, message: str) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def check() -> bool:
            nonlocal last
            last = await self.quote_metrics()
            return bool(predicate(last))

        await wait_until(check, within, interval=0.05, message=f"{message} (last metrics: {last})")
        return last

    async def wait_one_session_streaming(self, within: float = 15.0) -> dict[str, Any]:
        """The simulator holds exactly one session, with the pinned symbols subscribed."""
        last: Any = None

        async def check() -> bool:
            nonlocal last
            last = (await self.sim_stats())["ws"]
            return len(last["sessions"]) == 1 and quote_keys(last["sessions"][0]["subscriptions"]) == PINNED

        await wait_until(check, within, interval=0.05, message=f"one streaming session at the simulator ({last})")
        return last  # type: ignore[no-any-return]

    def assert_all_answered(self) -> None:
        """Every quote asked during the fault got an answer (200), never an error."""
        self.assertTrue(self.answers)
        bad = [(r.status_code, r.text) for r in self.answers if r.status_code != 200]
        self.assertEqual(bad, [])


class WsDropTest(FaultGatewayCase):
    async def test_drop_reconnects_serving_rest_meanwhile_then_ws_again(self) -> None:
        await self.wait_source("kis-ws")
        before = await self.quote_metrics()
        self.assertEqual(before["ws_reconnect_count"], 0)
        await self.faults(ws_drop_after_s=1.0)  # every connection is aborted (1006) after 1 s

        m = await self.wait_metrics(lambda m: m["ws_reconnect_count"] >= 1, 10, "a reconnect")
        self.assertIsNotNone(m["ws_last_error"])
        # The feed is down (each new socket dies within 1 s): quotes go stale and fall back to REST.
        q = await self.wait_source("kis-rest")
        self.assertTrue(q["market_open"])
        during = await self.quote_metrics()
        self.assertGreater(during["rest_fallbacks"], before["rest_fallbacks"])
        self.assertGreater(sum(during["fallback_reasons"].get(r, 0) for r in ("stale", "not_streaming")), 0)

        await self.faults(ws_drop_after_s=None)
        await self.wait_source("kis-ws", within=20)
        after = await self.wait_metrics(lambda m: m["ws_connected"] and m["ws_heartbeat_fresh"], 5, "connected")
        self.assertGreaterEqual(after["ws_reconnect_count"], 1)
        self.assertGreater(after["ws_messages"], before["ws_messages"])
        await self.wait_one_session_streaming()
        self.assertGreaterEqual((await self.sim_stats())["ws"]["counters"]["dropped_by_fault"], 1)
        self.assert_all_answered()
        status = (await self.gw.get("/v1/session/status")).json()
        self.assertEqual(status["ws"]["state"], "streaming")


class SilentFeedTest(FaultGatewayCase):
    async def test_silent_feed_goes_stale_then_recovers(self) -> None:
        await self.wait_source("kis-ws")
        before = await self.quote_metrics()
        stale0 = before["fallback_reasons"].get("stale", 0)
        await self.faults(ws_silent=True)

        q = await self.wait_source("kis-rest")  # after KIS_QUOTE_FRESH_S=1 without data
        self.assertTrue(q["market_open"])
        m = await self.quote_metrics()
        self.assertGreater(m["fallback_reasons"].get("stale", 0), stale0)
        self.assertGreater(m["rest_fallbacks"], before["rest_fallbacks"])
        self.assertTrue(m["ws_connected"])  # the socket is up: ACKs and PINGPONG still flow
        self.assertEqual(m["ws_reconnect_count"], 0)
        silent_messages = m["ws_messages"]
        await self.wait_source("kis-rest", symbol="000660")
        self.assertEqual((await self.quote_metrics())["ws_messages"], silent_messages)
        self.assertGreaterEqual((await self.sim_stats())["rest_calls"].get(INQUIRE_PRICE, 0), 1)

        await self.faults(ws_silent=False)
        await self.wait_source("kis-ws")
        after = await self.quote_metrics()
        self.assertGreater(after["ws_messages"], silent_messages)
        self.assertEqual(after["ws_reconnect_count"], 0)  # no reconnect was needed
        self.assert_all_answered()


class StaleSessionTest(FaultGatewayCase):
    async def test_opsp0002_after_abnormal_close_does_not_get_stuck(self) -> None:
        # After an abnormal close the server keeps the old registrations for 30 s: a client that simply
        # re-subscribes gets OPSP0002 ("already in subscribe") and no data. The gateway unsubscribes the
        # old keys first, waits the grace, and subscribes for real.
        await self.faults(ws_stale_session=True, stale_grace_s=30.0)
        await self.wait_source("kis-ws")
        connections = (await self.sim_stats())["ws"]["counters"]["connections"]
        await self.faults(ws_drop_after_s=0.5)

        async def dropped() -> bool:
            return (await self.sim_stats())["ws"]["counters"].get("dropped_by_fault", 0) >= 1

        await wait_until(dropped, 10, interval=0.02, message="the drop")
        await self.faults(ws_drop_after_s=None)  # only the first socket is dropped

        m = await self.wait_metrics(lambda m: m["ws_reconnect_count"] >= 1, 10, "a reconnect")
        await self.wait_source("kis-ws", within=20)
        ws = await self.wait_one_session_streaming()
        self.assertEqual(ws["ghost_keys"], 0, "the stale registrations were released")
        self.assertGreaterEqual(ws["counters"]["connections"], connections + 1)
        before = (await self.quote_metrics())["ws_messages"]
        m = await self.wait_metrics(lambda m: m["ws_messages"] > before, 5, "data after the recovery")
        self.assertTrue(m["ws_connected"])
        status = (await self.gw.get("/v1/session/status")).json()
        self.assertEqual(quote_keys(status["ws"]["subscriptions_held"]), PINNED)
        self.assertIn("ws_unsubscribe_stale", self.logs.names())
        self.assert_all_answered()


class HoldAppKeyFirst(SimTestCase):
    """Before the gateway starts, another client takes the app key's one WebSocket session.

    Listed after GatewayTestCase in the bases, so GatewayTestCase's ``super().asyncSetUp()`` (the
    simulator) runs this too, before the gateway is built.
    """

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.other = await websockets.connect(self.server.ws_url, ping_interval=None)
        await self.other.send(subscribe_msg(await self.approval_key(), "H0STCNT0", "005930"))
        ack = json.loads(await asyncio.wait_for(self.other.recv(), 5))
        assert ack["body"]["msg_cd"] == "OPSP0000", ack

    async def asyncTearDown(self) -> None:
        with contextlib.suppress(Exception):
            await self.other.close()
        await super().asyncTearDown()


class AppKeyInUseTest(FaultGatewayCase, HoldAppKeyFirst):
    async def test_opsp8996_is_reported_and_backed_off_not_looped(self) -> None:
        m = await self.wait_metrics(lambda m: "OPSP8996" in (m["ws_last_error"] or ""), 10, "OPSP8996")
        self.assertFalse(m["ws_connected"])
        status = (await self.gw.get("/v1/session/status")).json()
        self.assertEqual(status["ws"]["state"], "backoff")
        self.assertIn("OPSP8996", status["ws"]["last_error"])
        await wait_until(lambda: bool(self.logs.events("ws_backoff")), 5, message="the backoff log")
        self.assertGreaterEqual(self.logs.events("ws_backoff")[-1]["delay_s"], 30)

        # Quotes are still answered, from REST.
        q = await self.wait_source("kis-rest")
        self.assertTrue(q["market_open"])
        self.assertGreaterEqual((await self.quote_metrics())["fallback_reasons"].get("not_streaming", 0), 1)

        # Let some time pass, measured by the other client's feed (≈50 ticks of 20 ms): still one refusal.
        frames = 0
        while frames < 50:
            text = await asyncio.wait_for(self.other.recv(), 5)
            frames += text[:1] in ("0", "1")
        ws = (await self.sim_stats())["ws"]
        self.assertEqual(ws["counters"]["appkey_in_use"], 1)
        self.assertEqual(len(ws["sessions"]), 1)  # the other client's, untouched
        self.assertEqual((await self.quote_metrics())["ws_reconnect_count"], 1)

        # The other client leaves; an operator reconnect skips the rest of the backoff.
        await self.other.close()

        async def freed() -> bool:
            return not (await self.sim_stats())["ws"]["sessions"]

        await wait_until(freed, 5, interval=0.02, message="the app key to be free")
        r = await self.gw.post("/v1/session/reconnect", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        self.assertEqual(r.status_code, 200, r.text)
        await self.wait_source("kis-ws", within=15)
        await self.wait_one_session_streaming()
        self.assertEqual((await self.sim_stats())["ws"]["counters"]["appkey_in_use"], 1)
        self.assert_all_answered()


class ClosedMarketCase(FaultGatewayCase):
    def gateway_env(self) -> dict[str, str]:
        return {**super().gateway_env(), "KIS_MARKET_OVERRIDE": "closed"}


class TokenExpiryTest(ClosedMarketCase):
    async def test_token_expiry_mid_session_reissues_once(self) -> None:
        r = await self.quote("005930")
        self.assertEqual((r.status_code, r.json()["source"]), (200, "kis-rest"))
        status = (await self.gw.get("/v1/session/status")).json()
        self.assertTrue(status["token"]["has_token"])
        issued = (await self.sim_stats())["token_issuances"]
        expired = await self.admin("POST", "/tokens/expire")
        self.assertGreaterEqual(expired["expired"], 1)

        r = await self.quote("000660")  # another symbol: the 1 s REST reuse cannot answer it
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["source"], "kis-rest")
        stats = await self.sim_stats()
        self.assertEqual(stats["token_issuances"], issued + 1)
        self.assertGreaterEqual(stats["rest_errors"].get("EGW00123", 0), 1)  # KIS said "expired" once

        for symbol in ("035720", "005380"):  # the new token serves what follows: no further issuance
            r = await self.quote(symbol)
            self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual((await self.sim_stats())["token_issuances"], issued + 1)
        self.assertTrue((await self.gw.get("/v1/session/status")).json()["token"]["has_token"])
        self.assert_all_answered()


class RateLimitStormTest(ClosedMarketCase):
    async def test_storm_answers_503_with_retry_after_then_recovers(self) -> None:
        await self.faults(rate_limit_storm_s=1.5)
        r = await self.gw.get("/v1/quotes/005930")
        self.assertEqual(r.status_code, 503, r.text)
        body = r.json()
        self.assertEqual(body["code"], "REST_RATE_LIMIT_COOLDOWN")
        self.assertIs(body["retryable"], True)
        self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)
        m = await self.quote_metrics()
        self.assertGreaterEqual(m["rest_rate_limited"], 1)
        self.assertGreaterEqual((await self.sim_stats())["rest_errors"].get("EGW00201", 0), 1)

        seen: list[int] = []

        async def recovered() -> bool:
            r = await self.gw.get("/v1/quotes/005930")
            seen.append(r.status_code)
            if r.status_code == 503:
                self.assertEqual(r.json()["code"], "REST_RATE_LIMIT_COOLDOWN")
                self.assertIn("Retry-After", r.headers)
            return r.status_code == 200 and r.json()["source"] == "kis-rest"

        await wait_until(recovered, 10, interval=0.2, message="recovery after the storm")
        self.assertEqual(set(seen) - {200, 503}, set())
        self.assertGreater((await self.quote_metrics())["rest_fallbacks"], m["rest_fallbacks"])


class PacingTest(ClosedMarketCase):
    async def test_burst_over_many_symbols_never_trips_kis_rate_limit(self) -> None:
        symbols = list(self.sim.market.krx)[:60]
        before = await self.sim_stats()
        started = time.monotonic()
        answers = await asyncio.gather(*(self.gw.get(f"/v1/quotes/{s}") for s in symbols for _ in range(2)))
        elapsed = time.monotonic() - started
        ok = [r for r in answers if r.status_code == 200]
        shed = [r for r in answers if r.status_code == 503]
        self.assertEqual(len(ok) + len(shed), len(answers), [r.text for r in answers if r.status_code >= 500
                                                             and r.status_code != 503][:3])
        self.assertTrue(ok, "some requests are served")
        self.assertTrue(shed, "the excess is shed, not queued forever")
        for r in shed:
            self.assertEqual(r.json()["code"], "REST_RATE_LIMIT_COOLDOWN")
            self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)
        self.assertEqual({r.json()["source"] for r in ok}, {"kis-rest"})

        after = await self.sim_stats()
        self.assertEqual(after["rest_errors"].get("EGW00201", 0), before["rest_errors"].get("EGW00201", 0),
                         "the gateway's pacing kept KIS from answering EGW00201")
        calls = after["rest_calls"].get(INQUIRE_PRICE, 0) - before["rest_calls"].get(INQUIRE_PRICE, 0)
        self.assertLessEqual(calls, 20 * (elapsed + 1))
        self.assertEqual(calls, len({r.json()["symbol"] for r in ok}))  # one KIS call per served symbol
        m = await self.quote_metrics()
        self.assertEqual(m["rest_fallbacks"], len(ok))
        self.assertGreaterEqual(m["rest_rate_limited"], 1)


# --- two gateway processes on one database --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TwoGatewayProcessesTest(unittest.IsolatedAsyncioTestCase):
    """`kis sim` and two `uvicorn app.main:app` processes sharing KIS_DB_URL: one owner, one standby."""

    async def asyncSetUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.tmp = Path(self._tmp.name)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.addCleanup(self._stop_all)
        rest_port, ws_port = free_port(), free_port()
        self.sim_url = f"http://127.0.0.1:{rest_port}"
        self.spawn("sim", [sys.executable, "-m", "kis.cli", "sim", "--rest-port", str(rest_port),
                           "--ws-port", str(ws_port), "--tick-interval", "0.05"], {})
        self.http = httpx.AsyncClient(timeout=5.0)
        self.addAsyncCleanup(self.http.aclose)
        await self.wait_http(f"{self.sim_url}/__sim/stats", "the simulator")
        self.gateway_env = {
            "KIS_ENV": "sim", "KIS_REST_URL": self.sim_url, "KIS_WS_URL": f"ws://127.0.0.1:{ws_port}",
            "KIS_APP_KEY": APP_KEY, "KIS_APP_SECRET": APP_SECRET, "KIS_ACCOUNT_NO": f"{CANO}-{PRDT}",
            "KIS_MARKET_OVERRIDE": "open", "KIS_WS_SYMBOLS": "005930,000660",
            "KIS_DB_URL": f"sqlite:///{self.tmp}/gw.db", "KIS_STATE_DIR": str(self.tmp / "state"),
        }

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "EXECUTION_"))}
        log = open(self.tmp / f"{name}.log", "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(argv, cwd=REPO, env={**base, **env}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        proc.name = name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def _stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def log_of(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    async def wait_http(self, url: str, what: str, within: float = 30.0) -> None:
        async def up() -> bool:
            for proc in self.procs:
                if proc.poll() is not None and proc in self._expected_alive():
                    raise AssertionError(f"{proc.name} exited ({proc.returncode}):\n{self.log_of(proc.name)}")
            try:
                return (await self.http.get(url)).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up, within, interval=0.1, message=what)

    def _expected_alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if not getattr(p, "killed", False)]

    async def status(self, port: int) -> dict[str, Any]:
        r = await self.http.get(f"http://127.0.0.1:{port}/v1/session/status")
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()  # type: ignore[no-any-return]

    async def sim_sessions(self) -> list[dict[str, Any]]:
        r = await self.http.get(f"{self.sim_url}/__sim/stats")
        return r.json()["ws"]["sessions"]  # type: ignore[no-any-return]

    async def one_streaming_session(self) -> bool:
        sessions = await self.sim_sessions()
        return len(sessions) == 1 and quote_keys(sessions[0]["subscriptions"]) == PINNED

    async def test_one_owner_one_standby_and_failover_after_kill_9(self) -> None:
        ports = [free_port(), free_port()]
        gateways = {}
        for i, port in enumerate(ports):  # started together: both race for the lease (and the schema)
            gateways[port] = self.spawn(f"gw{i}", [sys.executable, "-m", "uvicorn", "app.main:app", "--host",
                                                   "127.0.0.1", "--port", str(port)], self.gateway_env)
        for port in ports:
            await self.wait_http(f"http://127.0.0.1:{port}/v1/session/status", f"gateway :{port}")

        roles: dict[int, str] = {}

        async def settled() -> bool:
            for port in ports:
                roles[port] = (await self.status(port))["role"]
            return sorted(roles.values()) == ["owner", "standby"]

        await wait_until(settled, 15, interval=0.1, message=f"one owner and one standby ({roles})")
        owner = next(p for p in ports if roles[p] == "owner")
        standby = next(p for p in ports if roles[p] == "standby")
        await wait_until(self.one_streaming_session, 15, interval=0.1, message="the owner's WS session")
        owner_status, standby_status = await self.status(owner), await self.status(standby)
        self.assertEqual(owner_status["lease_holder"], owner_status["owner_id"])
        self.assertEqual(standby_status["lease_holder"], owner_status["owner_id"])
        self.assertEqual(standby_status["ws"]["state"], "idle")  # the standby never opened a KIS WebSocket
        r = await self.http.get(f"http://127.0.0.1:{standby}/v1/quotes/005930")
        self.assertEqual((r.status_code, r.json()["code"]), (503, "SESSION_STANDBY"))
        r = await self.http.get(f"http://127.0.0.1:{owner}/v1/quotes/005930")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(len(await self.sim_sessions()), 1)

        victim = gateways[owner]
        victim.killed = True  # type: ignore[attr-defined]
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=10)

        async def promoted() -> bool:
            return (await self.status(standby))["role"] == "owner"

        await wait_until(promoted, LEASE_TTL_S + 5, interval=0.1, message="the standby to take over")
        took = time.monotonic() - killed_at
        self.assertLessEqual(took, LEASE_TTL_S + 1.0, f"takeover took {took:.1f}s")
        await wait_until(self.one_streaming_session, 15, interval=0.1, message="the new owner's WS session")
        self.assertEqual(len(await self.sim_sessions()), 1)

        async def ws_quote() -> bool:
            r = await self.http.get(f"http://127.0.0.1:{standby}/v1/quotes/005930")
            return r.status_code == 200 and r.json()["source"] == "kis-ws"

        await wait_until(ws_quote, 15, interval=0.1, message="kis-ws quotes from the new owner")


if __name__ == "__main__":
    unittest.main()
