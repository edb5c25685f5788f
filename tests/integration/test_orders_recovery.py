"""Orders whose outcome KIS did not tell us, notices that race or vanish, and a gateway killed mid-submit."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from integration.test_orders_api import ORDER, OrderCase
from kis.clock import KST, OffsetClock
from kis.storage.models import EventLog, Fill
from kis_testing import APP_KEY, APP_SECRET, CANO, PRDT, wait_until

REPO = Path(__file__).resolve().parents[2]


class UnknownOutcomeTest(OrderCase):
    def gateway_env(self) -> dict[str, str]:
        return {"KIS_UNKNOWN_ORDER_GRACE_S": "2", "KIS_RECONCILE_INTERVAL_S": "0.5"}

    async def test_lost_answer_is_reconciled_not_resubmitted(self) -> None:
        await self.admin("POST", "/faults", {"order_answer_lost": 1})
        order_id = (await self.post(ORDER, key="lost")).json()["order_id"]
        order = await self.wait_status(order_id, "FILLED", timeout=15)
        self.assertEqual(order["filled_qty"], 1)
        self.assertIsNotNone(order["broker_order_no"])
        stats = await self.admin("GET", "/stats")
        self.assertEqual(stats["orders"], 1)  # exactly one order at KIS
        self.assertEqual(stats["rest_errors"].get("EGW00002"), 1)
        async with self.trading.sessions() as s:
            events = [e.event_type for e in (await s.scalars(select(EventLog).where(
                EventLog.correlation_id == order["correlation_id"]))).all()]
        self.assertIn("order_outcome_unknown", events)
        self.assertIn("reconcile_order_linked", events)

    async def test_success_without_an_order_number_is_reconciled(self) -> None:
        # A server that says "sent" but gives no ODNO: the order exists somewhere, so it is found, not resent.
        await self.admin("POST", "/faults", {"order_answer_no_odno": 1})
        order_id = (await self.post(ORDER, key="no-odno")).json()["order_id"]
        order = await self.wait_status(order_id, "FILLED", timeout=15)
        self.assertRegex(order["broker_order_no"] or "", r"^\d{10}$")
        self.assertEqual((await self.admin("GET", "/stats"))["orders"], 1)
        async with self.trading.sessions() as s:
            events = [e.event_type for e in (await s.scalars(select(EventLog).where(
                EventLog.correlation_id == order["correlation_id"]))).all()]
        self.assertIn("order_outcome_unknown", events)

    async def test_unknown_that_never_reached_kis_is_rejected(self) -> None:
        # A 5xx before KIS acted: the gateway cannot know that, so the order is UNKNOWN until reconciled.
        await self.admin("POST", "/faults", {"order_fail_unprocessed": 1})
        order_id = (await self.post(ORDER, key="never")).json()["order_id"]
        order = await self.wait_status(order_id, "REJECTED", timeout=15)
        self.assertEqual(order["reject_code"], "BROKER_ORDER_NOT_FOUND")
        self.assertEqual((await self.admin("GET", "/stats"))["orders"], 0)


class InFlightSubmitTest(OrderCase):
    """Reconciliation running while a submit is still waiting for KIS's answer leaves that order alone."""

    def gateway_env(self) -> dict[str, str]:
        return {"KIS_RECONCILE_INTERVAL_S": "0.1", "KIS_UNKNOWN_ORDER_GRACE_S": "0.2"}

    async def test_reconcile_does_not_race_an_inflight_submit(self) -> None:
        await self.admin("POST", "/faults", {"order_answer_delay_ms": 1500})
        runs_before = self.trading.reconciler.runs
        order_id = (await self.post(ORDER, key="slow")).json()["order_id"]
        await self.wait_status(order_id, "SUBMITTING")

        async def at_kis() -> bool:
            return len((await self.admin("GET", f"/accounts/{CANO}-{PRDT}"))["orders"]) == 1

        await wait_until(at_kis, 10, message="order placed at KIS, answer still held")
        # Several reconcile rounds see the order at KIS while our submit is still waiting for the answer.
        await wait_until(lambda: self.trading.reconciler.runs >= runs_before + 3, 10, message="reconcile rounds")
        order = await self.wait_status(order_id, "FILLED", timeout=15)
        self.assertEqual(order["filled_qty"], 1)
        async with self.trading.sessions() as s:
            events = [e.event_type for e in (await s.scalars(select(EventLog).where(
                EventLog.correlation_id == order["correlation_id"]).order_by(EventLog.id))).all()]
            fills = (await s.scalars(select(Fill).where(Fill.order_id == order_id))).all()
        self.assertIn("order_submitted", events)  # the submit's own answer was recorded
        self.assertNotIn("reconcile_order_linked", events)
        self.assertNotIn("reconcile_order_not_found", events)
        self.assertEqual(sum(f.qty for f in fills), 1)
        self.assertIsNone(self.trading.executor.last_error)
        self.assertEqual((await self.admin("GET", "/stats"))["orders"], 1)


class ExecutorStopTest(OrderCase):
    """Losing the session mid-burst: submits waiting for a pacing slot go back to the queue (KIS never saw
    them), submits already sent finish; nothing is left half-sent, nothing is lost or sent twice."""

    def gateway_env(self) -> dict[str, str]:
        return {"KIS_REST_RATE_PER_S": "2", "KIS_RECONCILE_INTERVAL_S": "3600"}

    async def test_stop_mid_burst_requeues_unsent_submits(self) -> None:
        ids = [(await self.post(ORDER, key=f"burst-{i}")).json()["order_id"] for i in range(8)]

        async def one_at_kis() -> bool:
            return (await self.admin("GET", "/stats"))["orders"] >= 1

        await wait_until(one_at_kis, 10, message="the burst has started")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await self.trading.demote()
        self.assertLess(loop.time() - t0, 5.0)  # the slot waiters were not waited for
        at_kis = (await self.admin("GET", "/stats"))["orders"]
        states = [(await self.gw.get(f"/v1/orders/{i}")).json()["status"] for i in ids]
        self.assertNotIn("SUBMITTING", states)
        self.assertNotIn("UNKNOWN", states)
        self.assertEqual(sum(s != "ACCEPTED" for s in states), at_kis, states)
        self.assertGreater(states.count("ACCEPTED"), 0, states)
        async with self.trading.sessions() as s:
            deferred = (await s.scalars(select(EventLog).where(EventLog.event_type == "order_submit_deferred"))).all()
        self.assertTrue(any("EXECUTOR_STOPPED" in e.payload_json for e in deferred))
        # The next owner (here: this one again) submits what was put back — each order once.
        await self.trading.promote()
        for order_id in ids:
            await self.wait_status(order_id, "FILLED", timeout=20)
        self.assertEqual((await self.admin("GET", "/stats"))["orders"], 8)


class DayRolloverTest(OrderCase):
    """The gateway and KIS cross midnight together (both clocks move a day): day orders do not carry over,
    and an order is only ever reconciled against KIS's orders of its own trading day."""

    def gateway_clock(self) -> OffsetClock:
        # Both clocks start at 23:59:50 today: crossing midnight then takes a 20 s step, which leaves tokens
        # and the session lease valid (a whole day's jump would expire the token at once).
        start = datetime.combine(datetime.now(KST).date(), time(23, 59, 50), KST)
        self.clock = OffsetClock()
        self.clock.set_now(start)
        self.server.sim.clock.set_now(start)
        return self.clock

    def gateway_env(self) -> dict[str, str]:
        return {"KIS_RECONCILE_INTERVAL_S": "3600", "KIS_UNKNOWN_ORDER_GRACE_S": "600"}

    async def next_day(self) -> None:
        self.clock.advance(20)
        await self.admin("POST", "/clock", {"advance_s": 20})

    async def events_of(self, order: dict[str, Any]) -> list[str]:
        async with self.trading.sessions() as s:
            return [e.event_type for e in (await s.scalars(select(EventLog).where(
                EventLog.correlation_id == order["correlation_id"]).order_by(EventLog.id))).all()]

    async def test_unsent_orders_are_not_sent_the_next_day(self) -> None:
        await self.trading.demote()  # accepted, then the session is lost before it is sent
        stale = (await self.post(ORDER, key="yesterday")).json()["order_id"]
        await self.next_day()
        await self.trading.promote()
        order = await self.wait_status(stale, "CANCELLED")
        self.assertEqual((order["reject_code"], order["cancelled_qty"], order["filled_qty"]), ("EXPIRED_UNSENT", 1, 0))
        self.assertIn("order_expired", await self.events_of(order))
        today = (await self.post(ORDER, key="today")).json()["order_id"]
        await self.wait_status(today, "FILLED")
        self.assertEqual(await self.broker_order_calls(), 1)  # only today's order reached KIS

    async def test_a_resting_order_ends_with_its_day(self) -> None:
        st = await self.admin("GET", "/market/005930")
        r = await self.post({**ORDER, "qty": 3, "price": st["lower"]}, key="rest")
        order_id = (await self.wait_status(r.json()["order_id"], "SUBMITTED"))["order_id"]
        await self.next_day()
        self.assertEqual((await self.gw.post("/v1/orders/reconcile")).status_code, 200)
        order = await self.wait_status(order_id, "CANCELLED")
        self.assertEqual((order["cancelled_qty"], order["filled_qty"], order["remaining_qty"]), (3, 0, 0))
        self.assertIn("order_expired", await self.events_of(order))
        account = await self.admin("GET", f"/accounts/{CANO}-{PRDT}")
        self.assertEqual(account["reserved_cash"], 0)  # KIS ended it too

    async def test_yesterdays_unknown_order_is_found_in_yesterdays_orders(self) -> None:
        await self.trading.reconciler.stop()  # nobody settles it before midnight
        await self.admin("POST", "/faults", {"order_answer_lost": 1})
        order_id = (await self.post(ORDER, key="lost")).json()["order_id"]
        await self.wait_status(order_id, "UNKNOWN")
        async def filled_at_kis() -> bool:
            orders = (await self.admin("GET", f"/accounts/{CANO}-{PRDT}"))["orders"]
            return len(orders) == 1 and orders[0]["filled"] == 1

        await wait_until(filled_at_kis, 10, message="the order filled at KIS")
        await self.next_day()  # today's daily orders at KIS are empty: only yesterday's can settle it
        self.assertEqual((await self.gw.post("/v1/orders/reconcile")).status_code, 200)
        order = await self.wait_status(order_id, "FILLED", "REJECTED")
        self.assertEqual((order["status"], order["filled_qty"]), ("FILLED", 1))
        self.assertIn("reconcile_order_linked", await self.events_of(order))
        self.assertEqual((await self.admin("GET", "/stats"))["orders"], 1)


class FillRecordingTest(OrderCase):
    """Fills recorded concurrently (notices, reconciliation) are neither lost nor counted twice."""

    async def resting_order(self, qty: int) -> dict[str, Any]:
        st = await self.admin("GET", "/market/005930")
        r = await self.post({**ORDER, "qty": qty, "price": st["lower"]}, key=f"rest-{qty}")
        self.assertEqual(r.status_code, 201, r.text)
        return await self.wait_status(r.json()["order_id"], "SUBMITTED")

    async def test_concurrent_fills_are_not_lost(self) -> None:
        order = await self.resting_order(3)
        record = self.trading.executor.record_fill
        results = await asyncio.gather(*(record(order["order_id"], order["broker_order_no"], 1, order["price"],
                                                "090000", "notice", f"test:{i}") for i in range(10)))
        self.assertEqual(sorted(results), [False] * 7 + [True] * 3)
        fresh = (await self.gw.get(f"/v1/orders/{order['order_id']}")).json()
        self.assertEqual((fresh["filled_qty"], fresh["status"]), (3, "FILLED"))
        async with self.trading.sessions() as s:
            fills = (await s.scalars(select(Fill).where(Fill.order_id == order["order_id"]))).all()
            events = (await s.scalars(select(EventLog).where(EventLog.event_type == "order_fill",
                                                             EventLog.correlation_id == order["correlation_id"]))).all()
        self.assertEqual(sum(f.qty for f in fills), 3)
        self.assertEqual(len(events), 3)

    async def test_stale_reconcile_arithmetic_adds_nothing(self) -> None:
        order = await self.resting_order(3)
        record = self.trading.executor.record_fill
        args = (order["order_id"], order["broker_order_no"], 1, order["price"], "090000")
        self.assertTrue(await record(*args, "notice", "n:1"))
        # Reconciliation computed "1 missing" from filled_qty 0, but the notice brought that fill meanwhile.
        self.assertFalse(await record(*args, "reconcile", "r:1", expect_filled=0))
        self.assertTrue(await record(*args, "reconcile", "r:2", expect_filled=1))
        fresh = (await self.gw.get(f"/v1/orders/{order['order_id']}")).json()
        self.assertEqual((fresh["filled_qty"], fresh["status"]), (2, "PARTIALLY_FILLED"))


class NoticeRaceTest(OrderCase):
    async def test_fill_notice_before_submit_answer(self) -> None:
        await self.admin("POST", "/faults", {"order_answer_delay_ms": 400})
        order_id = (await self.post(ORDER, key="race")).json()["order_id"]
        order = await self.wait_status(order_id, "FILLED")
        self.assertEqual(order["filled_qty"], 1)
        async with self.trading.sessions() as s:
            fills = (await s.scalars(select(Fill).where(Fill.order_id == order_id))).all()
        self.assertEqual([(f.qty, f.source) for f in fills], [(1, "notice")])


class LostNoticesTest(OrderCase):
    def gateway_env(self) -> dict[str, str]:
        return {"KIS_RECONCILE_INTERVAL_S": "3600"}

    async def test_reconcile_repairs_missing_fills(self) -> None:
        await self.admin("POST", "/faults", {"ws_silent": True})
        order_id = (await self.post({**ORDER, "qty": 2}, key="quiet")).json()["order_id"]
        order = await self.wait_status(order_id, "SUBMITTED", "PARTIALLY_FILLED", "FILLED")
        self.assertEqual(order["status"], "SUBMITTED")  # filled at KIS, but no notice came
        r = await self.gw.post("/v1/orders/reconcile")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertGreaterEqual(r.json()["corrections"], 1)
        order = (await self.gw.get(f"/v1/orders/{order_id}")).json()
        self.assertEqual((order["status"], order["filled_qty"]), ("FILLED", 2))
        async with self.trading.sessions() as s:
            kinds = [e.event_type for e in (await s.scalars(select(EventLog))).all()]
        self.assertIn("reconcile_fill_added", kinds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KillNineTest(unittest.IsolatedAsyncioTestCase):
    """kill -9 of the gateway while KIS holds the answer to a submitted order; restart; one order, settled."""

    async def asyncSetUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.rest_port, self.ws_port, self.gw_port = _free_port(), _free_port(), _free_port()
        self.procs.append(subprocess.Popen(  # noqa: ASYNC220 (starts it; does not wait)
            [sys.executable, "-m", "kis.cli", "sim", "--rest-port", str(self.rest_port), "--ws-port",
             str(self.ws_port), "--tick-interval", "0.05"], cwd=self.tmp.name, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        self.sim = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.rest_port}", timeout=10)
        self.gw = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.gw_port}", timeout=10)

        async def sim_up() -> bool:
            try:
                return (await self.sim.get("/__sim/stats")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(sim_up, 20, 0.05, "simulator process")
        self.env = {**os.environ, "KIS_ENV": "sim", "KIS_REST_URL": f"http://127.0.0.1:{self.rest_port}",
                    "KIS_WS_URL": f"ws://127.0.0.1:{self.ws_port}", "KIS_APP_KEY": APP_KEY,
                    "KIS_APP_SECRET": APP_SECRET, "KIS_ACCOUNT_NO": f"{CANO}-{PRDT}", "KIS_HTS_ID": "simhtsid",
                    "KIS_MARKET_OVERRIDE": "open", "KIS_DB_URL": f"sqlite:///{self.tmp.name}/gw.db",
                    "KIS_STATE_DIR": f"{self.tmp.name}/state", "KIS_RECONCILE_INTERVAL_S": "1",
                    "KIS_UNKNOWN_ORDER_GRACE_S": "30"}

    def start_gateway(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(self.gw_port)],
                                cwd=REPO, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    async def gateway_up(self) -> bool:
        try:
            return (await self.gw.get("/v1/session/status")).json().get("role") == "owner"
        except (httpx.HTTPError, ValueError):
            return False

    async def asyncTearDown(self) -> None:
        await self.sim.aclose()
        await self.gw.aclose()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        self.tmp.cleanup()

    async def test_kill_between_persist_and_broker_answer(self) -> None:
        gw = self.start_gateway()
        await wait_until(self.gateway_up, 30, 0.1, "gateway owner")
        env_db = self.env["KIS_DB_URL"]
        r = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "kis.cli", "kill-switch", "off", "--reason", "test", "--by", "ci"],
            cwd=REPO, env={**self.env, "KIS_DB_URL": env_db}, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        await self.sim.post("/__sim/faults", json={"order_answer_delay_ms": 20000})
        r = await self.gw.post("/v1/orders", json=ORDER, headers={"Idempotency-Key": "k9"})
        self.assertEqual(r.status_code, 201, r.text)
        order_id = r.json()["order_id"]

        async def at_kis() -> bool:
            acct = (await self.sim.get(f"/__sim/accounts/{CANO}-{PRDT}")).json()
            return len(acct.get("orders", [])) == 1

        await wait_until(at_kis, 15, 0.05, "order executed at KIS")
        os.kill(gw.pid, signal.SIGKILL)
        gw.wait(10)
        await self.sim.post("/__sim/faults", json={"order_answer_delay_ms": 0})
        self.start_gateway()
        await wait_until(self.gateway_up, 30, 0.1, "gateway restarted")

        async def settled() -> bool:
            o = (await self.gw.get(f"/v1/orders/{order_id}")).json()
            return o.get("status") == "FILLED"

        await wait_until(settled, 30, 0.2, "order settled by reconciliation")
        acct = (await self.sim.get(f"/__sim/accounts/{CANO}-{PRDT}")).json()
        self.assertEqual(len(acct["orders"]), 1)  # never resubmitted
        self.assertEqual(acct["holdings"]["005930"]["qty"], 1)
        replay = await self.gw.post("/v1/orders", json=ORDER, headers={"Idempotency-Key": "k9"})
        self.assertEqual(replay.json()["order_id"], order_id)


if __name__ == "__main__":
    unittest.main()
