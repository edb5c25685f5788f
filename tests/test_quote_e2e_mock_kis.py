"""End to end: the gateway's quote path against the KIS simulator, over real sockets (seeds 000, 001, 004).

Every quote curl of the runbooks (seed 000 §2–§3, seed 001 "Quick API Check") is sent here verbatim (the
path and query; the host is the test's gateway). Market hours come from the embedded simulator's session
(always open) or from ``KIS_MARKET_OVERRIDE``, so the suite passes at any wall-clock hour.

Seed 004 runs this file by path: ``python3 -m unittest tests/test_quote_e2e_mock_kis.py -v``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import unittest
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # run by path (seed 004), not only by discovery
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from kis_testing import GatewayTestCase, JsonLogCapture, wait_until

OPERATOR_TOKEN = "op-" + "t" * 29
METRIC_KEYS = ("cached_symbols", "ws_messages", "rest_fallbacks", "ws_connected", "last_ws_message_ts",
               "ws_heartbeat_fresh", "ws_reconnect_count", "ws_last_error")
KILL_SWITCH_BLOCKER = "safety: kill switch ACTIVE"
MALFORMED = ("00593", "0059301", "005930;", "abc$", "-AAPL", ".5930", "삼성전자", "A" * 13, "0 5930", "%00",
             "005930%0A", "AAPL!", "\ufb00")  # "ﬀ".upper() == "FF"


PINNED = ["H0STCNT0:000660", "H0STCNT0:005930"]  # KIS_WS_SYMBOLS=005930,000660


def quote_keys(keys: list[str]) -> list[str]:
    """The realtime price registrations among ``keys`` (the order path adds an execution-notice one)."""
    return sorted(k for k in keys if k.startswith("H0STCNT0:"))


class QuoteGatewayCase(GatewayTestCase):
    def gateway_env(self) -> dict[str, str]:
        return {"KIS_OPERATOR_TOKEN": OPERATOR_TOKEN}

    async def asyncSetUp(self) -> None:
        self.logs = JsonLogCapture()
        self.addCleanup(self.logs.close)
        await super().asyncSetUp()

    async def get_ok(self, path: str) -> Any:
        r = await self.gw.get(path)
        self.assertEqual(r.status_code, 200, f"GET {path}: {r.text}")
        return r.json()

    async def sim_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self.admin("GET", "/stats")
        return stats

    async def wait_streaming(self, within: float = 10.0) -> None:
        async def streaming() -> bool:
            m = await self.quote_metrics()
            return bool(m["ws_connected"] and m["ws_messages"] > 0 and m["cached_symbols"] >= 2)

        await wait_until(streaming, within, interval=0.05, message="the gateway to stream quotes")

    async def wait_source(self, symbol: str, source: str, within: float = 10.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def answered() -> bool:
            nonlocal last
            r = await self.gw.get(f"/v1/quotes/{symbol}")
            last = r.json()
            return r.status_code == 200 and last.get("source") == source

        await wait_until(answered, within, interval=0.05, message=f"{symbol} from {source} (last: {last})")
        return last

    async def freeze_feed(self) -> None:
        """Stop the random walk, so the simulator's price only changes when a test forces it."""
        await self.admin("POST", "/feed", {"tick_interval_s": 3600})

    def assert_error(self, r: httpx.Response, status: int, code: str) -> dict[str, Any]:
        self.assertEqual(r.status_code, status, r.text)
        body: dict[str, Any] = r.json()
        self.assertEqual(body["code"], code, body)
        self.assertIsInstance(body["message"], str)
        self.assertIsInstance(body["retryable"], bool)
        return body


class MarketOpenQuoteTest(QuoteGatewayCase):
    """Market open (the embedded simulator's session): realtime quotes answer as kis-ws."""

    async def test_quote_is_kis_ws_within_10s_and_ws_messages_grow(self) -> None:
        q = await self.wait_source("005930", "kis-ws", within=10)
        self.assertEqual(q["symbol"], "005930")
        self.assertTrue(q["market_open"])
        self.assertGreater(q["price"], 0)
        self.assertLess(q["age_ms"], 10_000)
        first = (await self.quote_metrics())["ws_messages"]

        async def grows() -> bool:
            return (await self.quote_metrics())["ws_messages"] > first

        await wait_until(grows, 5, interval=0.05, message="ws_messages to grow")
        m = await self.quote_metrics()
        self.assertTrue(m["ws_connected"])
        self.assertGreaterEqual(m["ws_quote_hits"], 1)
        # Once streaming, quotes keep coming from the cache: no REST fallback, no KIS REST quote call.
        kis_calls = (await self.sim_stats())["rest_calls"].get("FHKST01010100", 0)
        for _ in range(5):
            self.assertEqual((await self.get_ok("/v1/quotes/005930"))["source"], "kis-ws")
        after = await self.quote_metrics()
        self.assertEqual(after["rest_fallbacks"], m["rest_fallbacks"])
        self.assertEqual(after["ws_quote_hits"], m["ws_quote_hits"] + 5)
        self.assertEqual((await self.sim_stats())["rest_calls"].get("FHKST01010100", 0), kis_calls)

    async def test_runbook_quote_curls_verbatim(self) -> None:
        """Seed 000 §2/§3 and seed 001: status, metrics, single and batch quotes."""
        await self.wait_streaming()
        status = await self.get_ok("/v1/session/status")
        self.assertEqual(status["role"], "owner")
        self.assertEqual(status["kis_env"], "sim")
        self.assertTrue(status["token"]["has_token"], status["token"])
        self.assertEqual(status["ws"]["state"], "streaming")
        self.assertTrue(status["ws"]["connected"])
        self.assertEqual(quote_keys(status["ws"]["subscriptions_held"]), PINNED)
        self.assertNotIn("12345678", json.dumps(status))  # the account is masked

        metrics = await self.get_ok("/v1/metrics/quote")
        for key in METRIC_KEYS:
            self.assertIn(key, metrics)
        self.assertGreaterEqual(metrics["cached_symbols"], 2)
        self.assertGreater(metrics["ws_messages"], 0)
        self.assertTrue(metrics["ws_connected"])
        self.assertTrue(metrics["ws_heartbeat_fresh"])
        self.assertIsNotNone(metrics["last_ws_message_ts"])
        self.assertEqual(metrics["ws_reconnect_count"], 0)
        self.assertIsNone(metrics["ws_last_error"])
        self.assertEqual(metrics["ws_slots_max"], 41)
        self.assertEqual(metrics["ws_slots_used"], len(status["ws"]["subscriptions_held"]))

        one = await self.get_ok("/v1/quotes/005930")
        self.assertEqual(one["source"], "kis-ws")
        for key in ("symbol", "price", "change", "change_rate", "open", "high", "low", "volume", "timestamp",
                    "age_ms"):
            self.assertIn(key, one)

        batch = await self.get_ok("/v1/quotes?symbols=005930,000660")
        self.assertEqual([q["symbol"] for q in batch["quotes"]], ["005930", "000660"])
        self.assertEqual({q["source"] for q in batch["quotes"]}, {"kis-ws"})
        self.assertEqual(batch["errors"], [])

    async def test_quote_equals_the_simulators_tick(self) -> None:
        await self.wait_streaming()
        await self.freeze_feed()
        now = (await self.admin("GET", "/market/005930"))["price"]
        target = (await self.admin("POST", "/market/005930", {"price": int(now * 1.02)}))["price"]
        self.assertNotEqual(target, now)
        last: dict[str, Any] = {}

        async def settled() -> bool:
            nonlocal last
            sim_price = (await self.admin("GET", "/market/005930"))["price"]
            if sim_price != target:  # the walk made one last step after the freeze: force it again
                await self.admin("POST", "/market/005930", {"price": target})
            last = await self.get_ok("/v1/quotes/005930")
            return sim_price == target and last["price"] == target and last["source"] == "kis-ws"

        await wait_until(settled, 5, interval=0.05, message=f"gateway price {target} (last: {last})")
        sim_now = await self.admin("GET", "/market/005930")
        q = await self.get_ok("/v1/quotes/005930")
        self.assertEqual((q["source"], q["price"]), ("kis-ws", sim_now["price"]))
        self.assertEqual(q["high"] >= q["price"] >= q["low"], True)

    async def test_stage_logs(self) -> None:
        """Seed 004 Task 2: the WS lifecycle logs each stage, as JSON lines."""
        await self.wait_streaming()
        needed = ("ws_worker_start", "ws_connect", "ws_subscribe", "ws_subscribe_ack", "ws_first_message")
        await wait_until(lambda: all(n in self.logs.names() for n in needed), 5,
                         message=f"stage logs {needed} (have {sorted(set(self.logs.names()))})")
        names = self.logs.names()
        order = [names.index(n) for n in ("session_owner_promoted", "ws_worker_start", "ws_connect",
                                          "ws_subscribe", "ws_first_message")]
        self.assertEqual(order, sorted(order), names)
        subscribed = {e.get("tr_key") for e in self.logs.events()
                      if e.get("event") == "ws_subscribe" and e.get("tr_id") == "H0STCNT0"}
        self.assertEqual(subscribed, {"005930", "000660"})
        for event in self.logs.events():  # secrets never reach the log
            text = json.dumps(event, ensure_ascii=False)
            self.assertNotIn("x" * 33, text)
            self.assertNotIn("s" * 180, text)

    async def test_live_readiness_blockers(self) -> None:
        await self.wait_streaming()
        readiness = await self.get_ok("/v1/session/live-readiness")
        self.assertEqual(set(readiness), {"can_trade", "blockers"})
        # Credentials, token, session and WS are all fine: only the kill switch (ACTIVE by default) blocks.
        self.assertIs(readiness["can_trade"], False)
        self.assertEqual(readiness["blockers"], [KILL_SWITCH_BLOCKER])

        # An operator deactivates the kill switch (what `kis kill-switch` does): now every gate is open.
        await self.runtime.trading.kill_switch.set(False, "readiness test", "tester")
        readiness = await self.get_ok("/v1/session/live-readiness")
        self.assertEqual(readiness, {"can_trade": True, "blockers": []})

        # A WS that goes away blocks again, and says so.
        await self.runtime.ws.stop()
        readiness = await self.get_ok("/v1/session/live-readiness")
        self.assertIs(readiness["can_trade"], False)
        self.assertEqual(readiness["blockers"], ["ws: not connected"])
        await self.runtime.trading.kill_switch.set(True, "readiness test done", "tester")
        readiness = await self.get_ok("/v1/session/live-readiness")
        self.assertEqual(readiness["blockers"], ["ws: not connected", KILL_SWITCH_BLOCKER])

    async def test_prometheus_metrics(self) -> None:
        await self.wait_streaming()
        await self.get_ok("/v1/quotes/005930")
        r = await self.gw.get("/metrics")
        self.assertEqual(r.status_code, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        samples: dict[str, float] = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        for name in ("kis_ws_messages_total", "kis_rest_fallbacks_total", "kis_ws_reconnect_count_total",
                     "kis_quote_requests_total", "kis_cached_symbols", "kis_ws_connected",
                     "kis_ws_heartbeat_fresh", "kis_session_owner", "kis_ws_slots_used"):
            self.assertIn(name, samples)
        self.assertGreater(samples["kis_ws_messages_total"], 0)
        self.assertEqual(samples["kis_ws_connected"], 1.0)
        self.assertEqual(samples["kis_session_owner"], 1.0)
        self.assertGreaterEqual(samples["kis_quote_requests_total"], 1)
        self.assertIn("# TYPE kis_ws_messages_total counter", r.text)

    async def test_malformed_symbol_is_422_never_500(self) -> None:
        for bad in MALFORMED:
            with self.subTest(symbol=bad):
                r = await self.gw.get(f"/v1/quotes/{bad}")
                self.assert_error(r, 422, "INVALID_SYMBOL")
        for query in ("symbols=005930,%21%21", "symbols=", "symbols=,,", "symbols=005930,0059301",
                      "symbols=005930%0A"):
            with self.subTest(query=query):
                self.assert_error(await self.gw.get(f"/v1/quotes?{query}"), 422, "INVALID_SYMBOL")
        r = await self.gw.get("/v1/quotes/AAPL?exchange=XXX")
        self.assert_error(r, 422, "INVALID_EXCHANGE")
        stats = await self.sim_stats()
        self.assertEqual(stats["rest_calls"].get("FHKST01010100", 0), 0, "no KIS call for a malformed symbol")

    async def test_unknown_symbol_is_404(self) -> None:
        await self.wait_streaming()
        slots = (await self.quote_metrics())["ws_slots_used"]
        r = await self.gw.get("/v1/quotes/999999")
        body = self.assert_error(r, 404, "SYMBOL_NOT_FOUND")
        self.assertIs(body["retryable"], False)
        batch = await self.get_ok("/v1/quotes?symbols=005930,999999")
        self.assertEqual([q["symbol"] for q in batch["quotes"]], ["005930"])
        self.assertEqual([(e["symbol"], e["code"]) for e in batch["errors"]], [("999999", "SYMBOL_NOT_FOUND")])
        # The unknown symbol does not keep a realtime slot, here or at KIS.
        m = await self.quote_metrics()
        self.assertEqual(m["ws_slots_used"], slots)

        async def released_at_sim() -> bool:
            sessions = (await self.sim_stats())["ws"]["sessions"]
            return [quote_keys(s["subscriptions"]) for s in sessions] == [PINNED]

        await wait_until(released_at_sim, 5, interval=0.05, message="the simulator to release 999999")

    async def test_on_demand_subscription_of_a_third_symbol(self) -> None:
        await self.wait_streaming()
        before = await self.quote_metrics()
        first = await self.get_ok("/v1/quotes/035720")
        self.assertIn(first["source"], ("kis-ws", "kis-rest"))
        q = await self.wait_source("035720", "kis-ws", within=10)
        self.assertEqual(q["symbol"], "035720")
        after = await self.quote_metrics()
        self.assertEqual(after["ws_slots_used"], before["ws_slots_used"] + 1)

        async def held_at_sim() -> bool:
            sessions = (await self.sim_stats())["ws"]["sessions"]
            return len(sessions) == 1 and "H0STCNT0:035720" in sessions[0]["subscriptions"]

        await wait_until(held_at_sim, 5, interval=0.05, message="the simulator to hold 035720")
        status = await self.get_ok("/v1/session/status")
        self.assertIn("H0STCNT0:035720", status["ws"]["subscriptions_held"])

    async def test_a_streamed_symbol_is_not_evicted_by_on_demand_lookups(self) -> None:
        from kis.sim.symbols import KRX_SYMBOLS

        await self.wait_streaming()
        streamed = "035720"
        others = [s.code for s in KRX_SYMBOLS if s.code not in (streamed, "005930", "000660")][:45]
        got: list[dict[str, Any]] = []
        batch_done = asyncio.Event()

        async def client() -> None:
            async with self.gw.stream("GET", f"/v1/stream/quotes?symbols={streamed}") as r:
                event = None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and event == "quote" and batch_done.is_set():
                        got.append(json.loads(line.split(":", 1)[1]))
                        if len(got) >= 2:
                            return

        task = asyncio.create_task(client())
        try:
            await wait_until(lambda: self.quote_metrics_sync_clients() == 1, 10, message="the stream client")
            # 45 other symbols through the 41-slot LRU: every unheld on-demand slot turns over.
            r = await self.gw.get("/v1/quotes", params={"symbols": ",".join(others)})
            self.assertEqual(r.status_code, 200, r.text)
            batch_done.set()
            sessions = (await self.sim_stats())["ws"]["sessions"]
            self.assertIn(f"H0STCNT0:{streamed}", sessions[0]["subscriptions"])
            self.assertLessEqual(len(sessions[0]["subscriptions"]), 41)
            await asyncio.wait_for(task, 15)  # and it keeps streaming
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.assertEqual({(q["symbol"], q["source"]) for q in got}, {(streamed, "kis-ws")})

    def quote_metrics_sync_clients(self) -> int:
        return self.runtime.fanout.clients

    async def test_sse_two_clients_one_kis_subscription(self) -> None:
        await self.wait_streaming()
        received: list[list[dict[str, Any]]] = [[], []]

        async def client(i: int) -> None:
            async with self.gw.stream("GET", "/v1/stream/quotes?symbols=005930") as r:
                self.assertEqual(r.status_code, 200)
                self.assertTrue(r.headers["content-type"].startswith("text/event-stream"))
                event = None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and event == "quote":
                        received[i].append(json.loads(line.split(":", 1)[1]))
                        if len(received[i]) >= 3:
                            return

        clients = [asyncio.create_task(client(i)) for i in range(2)]
        try:
            async def both_connected() -> bool:
                return (await self.quote_metrics())["stream_clients"] == 2 or all(t.done() for t in clients)

            await wait_until(both_connected, 10, interval=0.02, message="two SSE clients")
            sessions = (await self.sim_stats())["ws"]["sessions"]
            self.assertEqual(len(sessions), 1, sessions)
            self.assertEqual(sessions[0]["subscriptions"].count("H0STCNT0:005930"), 1)
            await asyncio.wait_for(asyncio.gather(*clients), 15)
        finally:
            for t in clients:
                t.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
        for quotes in received:
            self.assertGreaterEqual(len(quotes), 3)
            self.assertEqual({q["symbol"] for q in quotes}, {"005930"})
            self.assertEqual({q["source"] for q in quotes}, {"kis-ws"})
        sessions = (await self.sim_stats())["ws"]["sessions"]
        self.assertEqual(len(sessions), 1)
        self.assertEqual(quote_keys(sessions[0]["subscriptions"]), PINNED)

        async def clients_gone() -> bool:
            return (await self.quote_metrics())["stream_clients"] == 0

        await wait_until(clients_gone, 5, interval=0.05, message="SSE clients to be released")

    async def test_reconnect_needs_the_operator_token(self) -> None:
        await self.wait_streaming()
        self.assert_error(await self.gw.post("/v1/session/reconnect"), 401, "OPERATOR_AUTH_REQUIRED")
        self.assert_error(await self.gw.post("/v1/session/reconnect", headers={"Authorization": "Bearer nope"}),
                          401, "OPERATOR_AUTH_REQUIRED")
        self.assert_error(await self.gw.post("/v1/session/reconnect",
                                             headers={"Authorization": f"Basic {OPERATOR_TOKEN}"}),
                          401, "OPERATOR_AUTH_REQUIRED")
        self.assertEqual((await self.quote_metrics())["ws_reconnect_count"], 0)
        connections = (await self.sim_stats())["ws"]["counters"]["connections"]

        # Seed 000 §4.A.3, verbatim but for the host.
        r = await self.gw.post("/v1/session/reconnect", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["reconnect"], "requested")

        async def reconnected() -> bool:
            m = await self.quote_metrics()
            return m["ws_reconnect_count"] >= 1 and m["ws_connected"]

        await wait_until(reconnected, 15, interval=0.05, message="the reconnect")
        stats = await self.sim_stats()
        self.assertEqual(stats["ws"]["counters"]["connections"], connections + 1)
        before = (await self.quote_metrics())["ws_messages"]

        async def streaming_again() -> bool:
            return (await self.quote_metrics())["ws_messages"] > before

        await wait_until(streaming_again, 10, interval=0.05, message="messages after the reconnect")
        await self.wait_source("005930", "kis-ws")
        sessions = (await self.sim_stats())["ws"]["sessions"]
        self.assertEqual(len(sessions), 1)
        self.assertEqual(quote_keys(sessions[0]["subscriptions"]), PINNED)
        self.assertEqual((await self.sim_stats())["ws"]["counters"].get("already_subscribed", 0), 0)


class OperatorTokenUnsetTest(GatewayTestCase):
    async def test_reconnect_is_refused_without_a_configured_token(self) -> None:
        r = await self.gw.post("/v1/session/reconnect", headers={"Authorization": "Bearer anything"})
        self.assertEqual(r.status_code, 403, r.text)
        self.assertEqual(r.json()["code"], "OPERATOR_TOKEN_NOT_CONFIGURED")


class MarketClosedQuoteTest(QuoteGatewayCase):
    """KIS_MARKET_OVERRIDE=closed: quotes come from KIS REST (seed 000 §3, 장외)."""

    def gateway_env(self) -> dict[str, str]:
        return {**super().gateway_env(), "KIS_MARKET_OVERRIDE": "closed"}

    async def test_quote_is_kis_rest_and_counts_fallbacks_and_kis_calls(self) -> None:
        before_sim = (await self.sim_stats())["rest_calls"].get("FHKST01010100", 0)
        before = await self.quote_metrics()
        q = await self.get_ok("/v1/quotes/005930")
        self.assertEqual(q["source"], "kis-rest")
        self.assertFalse(q["market_open"])
        after = await self.quote_metrics()
        self.assertEqual(after["rest_fallbacks"], before["rest_fallbacks"] + 1)
        self.assertEqual(after["fallback_reasons"].get("market_closed"), 1)
        self.assertEqual((await self.sim_stats())["rest_calls"].get("FHKST01010100", 0), before_sim + 1)

    async def test_rest_quote_equals_the_simulators_price(self) -> None:
        await self.freeze_feed()
        now = (await self.admin("GET", "/market/000660"))["price"]
        target = (await self.admin("POST", "/market/000660", {"price": int(now * 0.97)}))["price"]

        async def settled() -> bool:
            sim_price = (await self.admin("GET", "/market/000660"))["price"]
            if sim_price != target:
                await self.admin("POST", "/market/000660", {"price": target})
            return sim_price == target

        await wait_until(settled, 5, interval=0.05, message="a frozen simulator price")
        sim_now = await self.admin("GET", "/market/000660")
        q = await self.get_ok("/v1/quotes/000660")
        self.assertEqual((q["source"], q["price"]), ("kis-rest", sim_now["price"]))

    async def test_runbook_curls_when_closed(self) -> None:
        await self.get_ok("/v1/session/status")
        batch = await self.get_ok("/v1/quotes?symbols=005930,000660")
        self.assertEqual([(q["symbol"], q["source"]) for q in batch["quotes"]],
                         [("005930", "kis-rest"), ("000660", "kis-rest")])
        metrics = await self.get_ok("/v1/metrics/quote")
        for key in METRIC_KEYS:
            self.assertIn(key, metrics)
        self.assertEqual(metrics["rest_fallbacks"], 2)
        self.assertEqual(metrics["fallback_reasons"], {"market_closed": 2})
        status = await self.get_ok("/v1/session/status")
        self.assertFalse(status["market"]["kr_open"])
        self.assertEqual(status["market"]["override"], "closed")

    async def test_rest_answers_are_shared_and_reused(self) -> None:
        """A burst for one symbol costs one KIS call (single flight + 1 s reuse)."""
        before_sim = (await self.sim_stats())["rest_calls"].get("FHKST01010100", 0)
        answers = await asyncio.gather(*(self.gw.get("/v1/quotes/005930") for _ in range(20)))
        self.assertEqual({r.status_code for r in answers}, {200})
        self.assertEqual(len({r.json()["price"] for r in answers}), 1)
        after_sim = (await self.sim_stats())["rest_calls"].get("FHKST01010100", 0)
        self.assertEqual(after_sim - before_sim, 1)
        self.assertEqual((await self.quote_metrics())["rest_fallbacks"], 20)


if __name__ == "__main__":
    unittest.main()
