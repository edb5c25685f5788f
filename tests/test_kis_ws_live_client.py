"""KisWsClient against the KIS simulator over real sockets (seed 004's ``tests/test_kis_ws_live_client.py``).

approval key -> connect -> subscribe -> ACK -> frames; PINGPONG both ways; reconnect after a drop with
unsubscribe + grace first; stale server sessions; OPSP0002/OPSP8996; giving up; LRU slots; encrypted
execution notices; stop. Every wait is a condition with a deadline; timings are shrunk via WsConfig and
SimConfig. Runs under pytest, ``python -m unittest discover -s tests`` and
``python -m unittest tests/test_kis_ws_live_client.py``.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))  # kis_testing, also when run by file path

import websockets

from kis.broker import trids as T
from kis.broker.auth import TokenManager
from kis.broker.pacing import Priority, RatePacer
from kis.broker.realtime import ParsedFrame, RealtimeParser
from kis.broker.rest import KisRestClient
from kis.broker.token_store import MemoryTokenStore, store_key
from kis.broker.ws import KisWsClient, WsConfig
from kis.clock import SystemClock
from kis.sim.engine import SimConfig
from kis_testing import APP_KEY, APP_SECRET, CANO, PRDT, SimTestCase, subscribe_msg, wait_until

CNT = "H0STCNT0"
SAMSUNG, HYNIX = "005930", "000660"
PINNED = [(CNT, SAMSUNG), (CNT, HYNIX)]
HTS_ID = "HTSUSER1"


class Recorder:
    """What a client delivered: parsed frames and decrypted notices."""

    def __init__(self) -> None:
        self.frames: list[ParsedFrame] = []
        self.notices: list[tuple[str, str]] = []

    def on_frame(self, frame: ParsedFrame) -> None:
        self.frames.append(frame)

    def on_notice(self, tr_id: str, plaintext: str) -> None:
        self.notices.append((tr_id, plaintext))

    def records(self, tr_id: str = CNT) -> list[list[str]]:
        return [r for f in self.frames if f.tr_id == tr_id for r in f.records]

    def codes(self) -> set[str]:
        return {r[0] for r in self.records()}

    def count(self, code: str) -> int:
        return sum(1 for r in self.records() if r[0] == code)


class WsClientCase(SimTestCase):
    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.02, pingpong_interval_s=10.0)

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.tokens = TokenManager(self.http, APP_KEY, APP_SECRET, store_key("sim", APP_KEY, self.server.rest_url),
                                   MemoryTokenStore(), SystemClock())
        self.clients: list[KisWsClient] = []
        self.events: list[tuple[float, Any, dict[str, Any]]] = []  # (time, sim session, message) seen by the sim

    async def asyncTearDown(self) -> None:
        for client in self.clients:
            await client.stop()
        await super().asyncTearDown()

    def client(self, url: str | None = None, approval: Any = None, **config: Any) -> tuple[KisWsClient, Recorder]:
        rec = Recorder()
        defaults: dict[str, Any] = {"grace_s": 0.3, "backoff_base_s": 0.05, "backoff_max_s": 0.2,
                                    "app_ping_s": 30.0, "appkey_in_use_backoff_s": 30.0}
        cfg = WsConfig(url=url or self.server.ws_url + "/tryitout", **{**defaults, **config})
        client = KisWsClient(cfg, approval or self.tokens.approval_key, SystemClock(), RealtimeParser(),
                             rec.on_frame, rec.on_notice)
        self.clients.append(client)
        return client, rec

    async def streaming(self, client: KisWsClient, keys: list[tuple[str, str]] = PINNED, within: float = 5) -> None:
        await wait_until(lambda: client.stats.state == "streaming" and all(k in client.held for k in keys),
                         within, message=f"client streaming with {keys}")

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("GET", "/stats")
        return result

    async def sessions(self) -> list[dict[str, Any]]:
        return list((await self.stats())["ws"]["sessions"])

    async def fault(self, **faults: Any) -> None:
        await self.admin("POST", "/faults", faults)

    def spy(self) -> None:
        """Record every text message the simulator receives, with the sim session it arrived on."""
        ws_server = self.server.ws
        original = ws_server._on_message

        async def spying(session: Any, text: str) -> None:
            try:
                msg = json.loads(text)
            except ValueError:
                msg = {}
            self.events.append((time.monotonic(), session, msg))
            await original(session, text)

        ws_server._on_message = spying  # type: ignore[method-assign]

    def control_events(self) -> list[tuple[float, Any, str, tuple[str, str]]]:
        """(time, session, tr_type, key) for subscribe/unsubscribe messages, in arrival order."""
        out = []
        for t, session, msg in self.events:
            header = msg.get("header") or {}
            if header.get("tr_id") == T.PINGPONG:
                continue
            inp = ((msg.get("body") or {}).get("input")) or {}
            out.append((t, session, str(header.get("tr_type")), (inp.get("tr_id"), inp.get("tr_key"))))
        return out


class SessionTest(WsClientCase):
    async def test_subscribe_ack_and_parsed_frames(self) -> None:
        client, rec = self.client()
        for key in PINNED:
            client.pin(*key)
        client.start()
        self.assertTrue(await client.wait_held(CNT, SAMSUNG, 5))
        self.assertTrue(await client.wait_held(CNT, HYNIX, 5))
        await wait_until(lambda: rec.codes() >= {SAMSUNG, HYNIX}, message="frames for both symbols")
        for record in rec.records():
            self.assertEqual(len(record), 46)
            self.assertIn(record[0], (SAMSUNG, HYNIX))
            self.assertTrue(record[2].isdigit() and int(record[2]) > 0)  # STCK_PRPR
        self.assertEqual(client.parser.failures, 0)
        self.assertEqual(client.stats.acks.get("OPSP0000"), 2)
        self.assertEqual(client.stats.state, "streaming")
        self.assertTrue(client.stats.connected)
        self.assertTrue(client.heartbeat_fresh)
        self.assertGreater(client.stats.records, 0)
        self.assertEqual(client.stats.records, len(rec.records()))
        self.assertIsNotNone(client.stats.last_message_ts)
        stats = await self.stats()
        self.assertEqual(stats["approval_keys"], 1)
        [session] = stats["ws"]["sessions"]
        self.assertEqual(session["subscriptions"], [f"{CNT}:{HYNIX}", f"{CNT}:{SAMSUNG}"])

    async def test_consumer_bug_does_not_drop_the_session(self) -> None:
        client, rec = self.client()

        def broken(frame: ParsedFrame) -> None:
            rec.frames.append(frame)
            raise RuntimeError("consumer bug")

        client.on_frame = broken
        client.pin(CNT, SAMSUNG)
        client.start()
        await wait_until(lambda: len(rec.frames) >= 5, message="frames despite a failing consumer")
        self.assertEqual((client.stats.connects, client.stats.reconnect_count), (1, 0))
        self.assertEqual(client.stats.handler_errors, len(rec.frames))

    async def test_stop_unsubscribes_and_closes(self) -> None:
        client, _ = self.client()
        for key in PINNED:
            client.pin(*key)
        client.start()
        await self.streaming(client)
        await client.stop()
        self.assertEqual(client.stats.state, "stopped")
        self.assertFalse(client.stats.connected)
        self.assertEqual(client.held, set())

        async def closed() -> bool:
            return (await self.stats())["ws"]["sessions"] == []

        await wait_until(closed, message="the simulator saw the socket close")
        counters = (await self.stats())["ws"]["counters"]
        self.assertEqual(counters.get("unsubscribes"), 2)  # released before closing, not left to time out
        self.assertEqual(counters.get("connections"), 1)
        self.assertEqual(client.stats.connects, 1)


class PingPongTest(WsClientCase):
    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.05, pingpong_interval_s=0.1)

    async def test_server_pingpong_is_echoed(self) -> None:
        client, _ = self.client(app_ping_s=60.0)
        client.pin(CNT, SAMSUNG)
        client.start()

        async def echoed() -> bool:
            sessions = await self.sessions()
            return bool(sessions) and sessions[0]["pingpong_echoes"] >= 3

        await wait_until(echoed, message="three PINGPONG echoes at the simulator")
        self.assertGreaterEqual(client.stats.pingpong_received, 3)
        self.assertGreaterEqual(client.stats.pingpong_answered, 3)
        self.assertEqual(client.stats.app_pings_sent, 0)  # every echo answered a server PINGPONG


class AppPingTest(WsClientCase):
    def sim_config(self) -> SimConfig:
        # The server never pings; an idle L4 timeout at 0.5 s ends sessions that send nothing.
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.05, pingpong_interval_s=600.0)

    async def test_app_level_pingpong_every_app_ping_s_keeps_an_idle_session(self) -> None:
        await self.fault(ws_idle_timeout_s=0.5)
        client, _ = self.client(app_ping_s=0.15)
        client.pin(CNT, SAMSUNG)
        t0 = time.monotonic()
        client.start()

        async def pinged(n: int) -> bool:
            sessions = await self.sessions()
            return bool(sessions) and sessions[0]["pingpong_echoes"] >= n

        await wait_until(lambda: pinged(3), message="three app-level PINGPONGs at the simulator")
        self.assertGreaterEqual(time.monotonic() - t0, 3 * 0.15 * 0.9)  # paced, not a burst
        self.assertEqual(client.stats.pingpong_received, 0)
        await wait_until(lambda: client.stats.app_pings_sent >= 6, message="pings past the idle timeout")
        stats = await self.stats()
        self.assertEqual(stats["ws"]["counters"].get("idle_timeouts", 0), 0)
        self.assertEqual((client.stats.connects, client.stats.reconnect_count), (1, 0))


    async def test_without_app_pings_an_idle_timeout_closes_and_the_client_reconnects(self) -> None:
        await self.fault(ws_idle_timeout_s=0.3)
        client, _ = self.client(app_ping_s=60.0, grace_s=0.05)
        client.pin(CNT, SAMSUNG)
        client.start()
        await wait_until(lambda: client.stats.connects >= 2, message="a reconnect after the idle close")
        self.assertEqual(client.stats.last_error, "closed by server: 1000 idle timeout")
        self.assertGreaterEqual((await self.stats())["ws"]["counters"].get("idle_timeouts", 0), 1)


class ReconnectTest(WsClientCase):
    async def wait_reconnected(self, client: KisWsClient) -> None:
        await wait_until(lambda: client.stats.connects >= 2, message="a second connection")
        await self.streaming(client)

    def second_session_events(self) -> list[tuple[float, str, tuple[str, str]]]:
        sessions: list[Any] = []
        for _, session, _, _ in self.control_events():
            if session not in sessions:
                sessions.append(session)
        self.assertGreaterEqual(len(sessions), 2)
        return [(t, tr_type, key) for t, s, tr_type, key in self.control_events() if s is sessions[1]]

    async def test_drop_reconnects_unsubscribing_then_waiting_the_grace(self) -> None:
        self.spy()
        await self.fault(ws_drop_after_s=0.8)
        client, rec = self.client(grace_s=0.3)
        for key in PINNED:
            client.pin(*key)
        client.start()
        await self.wait_reconnected(client)
        await self.fault(ws_drop_after_s=None)
        self.assertGreaterEqual(client.stats.reconnect_count, 1)
        events = self.second_session_events()
        unsubs = [(t, key) for t, tr_type, key in events if tr_type == "2"]
        subs = [(t, key) for t, tr_type, key in events if tr_type == "1"]
        self.assertEqual(sorted(k for _, k in unsubs), sorted(PINNED))
        self.assertEqual(sorted(k for _, k in subs), sorted(PINNED))
        self.assertEqual([tr for _, tr, _ in events[:2]], ["2", "2"], "unsubscribe before subscribing")
        gap = min(t for t, _ in subs) - max(t for t, _ in unsubs)
        self.assertGreaterEqual(gap, 0.3 - 0.01, "the grace passed between unsubscribe and subscribe")
        count = len(rec.records())
        await wait_until(lambda: len(rec.records()) > count + 5, message="frames after the reconnect")
        self.assertIn("ConnectionClosed", client.stats.last_error or "")

    async def test_stale_session_resubscribe_gets_opsp0000(self) -> None:
        # An abnormal close leaves the keys held by a ghost session for 30 s (longer than the test);
        # re-subscribing without releasing them first would be answered OPSP0002 and stream nothing.
        await self.fault(ws_stale_session=True, stale_grace_s=30, ws_drop_after_s=0.8)
        client, rec = self.client(grace_s=0.3)
        for key in PINNED:
            client.pin(*key)
        client.start()
        await self.wait_reconnected(client)
        await self.fault(ws_drop_after_s=None)
        stats = await self.stats()
        self.assertEqual(stats["ws"]["counters"].get("already_subscribed", 0), 0)
        self.assertEqual(stats["ws"]["ghost_keys"], 0)  # the unsubscribes released the ghost's keys
        self.assertNotIn("OPSP0002", client.stats.acks)
        self.assertGreaterEqual(client.stats.acks.get("OPSP0000", 0), 4)
        self.assertGreaterEqual(client.stats.acks.get("OPSP0001", 0), 2)
        before = {code: rec.count(code) for code in (SAMSUNG, HYNIX)}
        await wait_until(lambda: all(rec.count(code) > n for code, n in before.items()),
                         message="both symbols stream on the new session")
        sessions = await self.sessions()
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0]["subscriptions"], [f"{CNT}:{HYNIX}", f"{CNT}:{SAMSUNG}"])

    async def test_operator_reconnect_releases_first(self) -> None:
        self.spy()
        client, _ = self.client(grace_s=0.2)
        for key in PINNED:
            client.pin(*key)
        client.start()
        await self.streaming(client)
        client.request_reconnect()
        await self.wait_reconnected(client)
        first = [e for e in self.control_events() if e[1] is self.control_events()[0][1]]
        self.assertEqual(sorted(e[3] for e in first if e[2] == "2"), sorted(PINNED))
        counters = (await self.stats())["ws"]["counters"]
        self.assertEqual(counters.get("unsubscribes"), 2)
        self.assertNotIn("OPSP0002", client.stats.acks)

    async def test_opsp0002_counts_as_held(self) -> None:
        # A ghost from an earlier, uncleanly closed socket of this app key holds 005930.
        await self.fault(ws_stale_session=True, stale_grace_s=30)
        approval = await self.approval_key()
        ws = await self.ws_connect()
        await ws.send(subscribe_msg(approval, CNT, SAMSUNG))
        ack = json.loads(await ws.recv())
        self.assertEqual(ack["body"]["msg_cd"], "OPSP0000")
        ws.transport.abort()  # no close frame

        async def ghost() -> bool:
            return (await self.stats())["ws"]["ghost_keys"] == 1

        await wait_until(ghost, message="a ghost session holding the key")
        client, _ = self.client()
        client.pin(CNT, SAMSUNG)
        client.start()
        self.assertTrue(await client.wait_held(CNT, SAMSUNG, 5))
        self.assertEqual(client.stats.acks, {"OPSP0002": 1})
        self.assertEqual(client.stats.state, "streaming")
        self.assertEqual(client.stats.reconnect_count, 0)

    async def test_second_client_on_the_same_app_key_backs_off(self) -> None:
        first, rec = self.client()
        first.pin(CNT, SAMSUNG)
        first.start()
        await self.streaming(first, [(CNT, SAMSUNG)])
        second, _ = self.client(appkey_in_use_backoff_s=30.0, backoff_base_s=0.01, backoff_max_s=0.01)
        second.pin(CNT, SAMSUNG)
        second.start()
        await wait_until(lambda: second.stats.state == "backoff" and "OPSP8996" in (second.stats.last_error or ""),
                         message="OPSP8996 on the second client")
        count = len(rec.records())
        await wait_until(lambda: len(rec.records()) >= count + 20, message="the first client keeps streaming")
        self.assertEqual(second.stats.connects, 1)  # did not come back after its 10 ms base backoff
        self.assertEqual(second.stats.reconnect_count, 1)
        self.assertEqual(second.stats.acks.get("OPSP8996"), 1)
        stats = await self.stats()
        self.assertEqual(stats["ws"]["counters"].get("appkey_in_use"), 1)
        self.assertEqual((first.stats.connects, first.stats.reconnect_count), (1, 0))
        self.assertTrue(first.stats.connected)

    async def test_appkey_in_use_counts_as_a_failed_attempt(self) -> None:
        first, _ = self.client()
        first.pin(CNT, SAMSUNG)
        first.start()
        await self.streaming(first, [(CNT, SAMSUNG)])
        second, _ = self.client(max_attempts=1, appkey_in_use_backoff_s=30.0)
        second.pin(CNT, SAMSUNG)
        t0 = time.monotonic()
        second.start()
        await wait_until(lambda: second.stats.state == "failed", message="the second client giving up")
        self.assertLess(time.monotonic() - t0, 5)  # no 30 s OPSP8996 backoff before giving up
        self.assertEqual(second.stats.connects, 1)
        self.assertTrue(first.stats.connected)


class GiveUpTest(WsClientCase):
    async def test_max_attempts_gives_up_without_a_final_sleep(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nothing listens here: connection refused

        async def approval(_force: bool) -> str:
            return "00000000-0000-0000-0000-000000000000"

        attempts: list[float] = []
        real_connect = websockets.connect

        def connect(*args: Any, **kwargs: Any) -> Any:
            attempts.append(time.monotonic())
            return real_connect(*args, **kwargs)

        client, _ = self.client(url=f"ws://127.0.0.1:{port}", approval=approval, max_attempts=3,
                                backoff_base_s=0.6, backoff_max_s=0.6)
        with mock.patch("kis.broker.ws.websockets.connect", connect):
            client.start()
            task = client._task
            assert task is not None
            await wait_until(task.done, 10, message="the client giving up")
        finished = time.monotonic()
        self.assertEqual(client.stats.state, "failed")
        self.assertEqual(len(attempts), 3)
        # Two backoff sleeps (each >= 0.6 * 0.5 with jitter) between three attempts ...
        self.assertGreaterEqual(attempts[1] - attempts[0], 0.3 - 0.01)
        self.assertGreaterEqual(attempts[2] - attempts[1], 0.3 - 0.01)
        # ... and none after the last one.
        self.assertLess(finished - attempts[2], 0.2)
        self.assertEqual(client.stats.reconnect_count, 2)
        self.assertEqual(client.stats.connects, 0)
        self.assertFalse(client.stats.connected)
        self.assertIn("Error", client.stats.last_error or "")

    async def test_drops_after_streaming_do_not_count_toward_giving_up(self) -> None:
        await self.fault(ws_drop_after_s=0.3)
        client, _ = self.client(max_attempts=2, grace_s=0.05)
        client.pin(CNT, SAMSUNG)
        client.start()
        await wait_until(lambda: client.stats.connects >= 4, message="several sessions, each dropped")
        self.assertNotEqual(client.stats.state, "failed")
        await self.fault(ws_drop_after_s=None)


class InvalidApprovalTest(WsClientCase):
    async def test_opsp0011_fetches_a_new_approval_key_and_resubscribes(self) -> None:
        current = {"key": "00000000-0000-0000-0000-000000000000"}
        forced: list[bool] = []

        async def approval(force: bool) -> str:
            if force:
                forced.append(force)
                current["key"] = await self.tokens.approval_key(True)
            return current["key"]

        client, rec = self.client(approval=approval)
        client.pin(CNT, SAMSUNG)
        client.start()
        self.assertTrue(await client.wait_held(CNT, SAMSUNG, 5))
        self.assertEqual(client.stats.acks.get("OPSP0011"), 1)
        self.assertEqual(forced, [True])
        await wait_until(lambda: SAMSUNG in rec.codes(), message="frames with the new key")


class SlotTest(WsClientCase):
    async def test_want_beyond_41_evicts_the_least_recently_used(self) -> None:
        await self.admin("POST", "/feed", {"tick_interval_s": 0.5})  # 41 symbols: keep the feed light
        codes = [c for c in sorted(self.sim.market.krx) if c not in (SAMSUNG, HYNIX)][:40]
        client, _ = self.client()
        for key in PINNED:
            client.pin(*key)
        client.start()
        await self.streaming(client)
        for code in codes[:39]:
            self.assertTrue(client.want(CNT, code))
        await wait_until(lambda: len(client.held) == 41, message="41 registrations held")
        self.assertTrue(client.want(CNT, codes[0]))  # used again: now the most recent
        self.assertTrue(client.want(CNT, codes[39]))  # the 42nd key: codes[1] must make room
        await wait_until(lambda: (CNT, codes[39]) in client.held and (CNT, codes[1]) not in client.held,
                         message="the LRU key swapped for the new one")
        stats = await self.stats()
        counters = stats["ws"]["counters"]
        self.assertEqual(counters.get("max_subscribe", 0), 0)  # the unsubscribe went out first
        self.assertEqual(counters.get("unsubscribes"), 1)
        subs = set(stats["ws"]["sessions"][0]["subscriptions"])
        self.assertEqual(len(subs), 41)
        self.assertNotIn(f"{CNT}:{codes[1]}", subs)
        self.assertTrue({f"{CNT}:{codes[0]}", f"{CNT}:{codes[39]}", f"{CNT}:{SAMSUNG}", f"{CNT}:{HYNIX}"} <= subs)
        self.assertEqual(len(client.slots), 41)
        self.assertNotIn("OPSP0008", client.stats.acks)

    async def test_release_gives_back_an_on_demand_slot(self) -> None:
        client, _ = self.client()
        client.pin(CNT, SAMSUNG)
        client.want(CNT, HYNIX)
        client.start()
        await self.streaming(client)
        self.assertFalse(client.release(CNT, SAMSUNG))  # pinned: stays
        self.assertFalse(client.release(CNT, "999999"))  # never had a slot
        self.assertTrue(client.release(CNT, HYNIX))
        self.assertNotIn((CNT, HYNIX), client.slots)

        async def released() -> bool:
            sessions = await self.sessions()
            return sessions[0]["subscriptions"] == [f"{CNT}:{SAMSUNG}"]

        await wait_until(released, message="the simulator saw the unsubscribe")
        await wait_until(lambda: client.held == {(CNT, SAMSUNG)}, message="the client let go of the key")
        self.assertIn((CNT, SAMSUNG), client.slots)


class NoticeTest(WsClientCase):
    def setUp(self) -> None:
        self._creds = tempfile.TemporaryDirectory()
        self.creds_file = Path(self._creds.name) / "apps.json"
        self.creds_file.write_text(json.dumps({"apps": [
            {"app_key": APP_KEY, "app_secret": APP_SECRET, "hts_id": HTS_ID}]}))

    def tearDown(self) -> None:
        self._creds.cleanup()

    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.02, credentials_file=self.creds_file)

    async def test_execution_notices_are_decrypted(self) -> None:
        client, rec = self.client()
        client.pin(T.RT_NOTICE_LIVE, HTS_ID)
        client.pin(CNT, SAMSUNG)
        client.start()
        self.assertTrue(await client.wait_held(T.RT_NOTICE_LIVE, HTS_ID, 5))
        pacer = RatePacer(10, SystemClock())
        rest = KisRestClient(self.server.rest_url, APP_KEY, APP_SECRET, self.tokens, pacer)
        try:
            r = await rest.call("POST", T.ORDER_CASH_PATH, T.ORDER_BUY.current(paper=False), priority=Priority.ORDER,
                                body={"CANO": CANO, "ACNT_PRDT_CD": PRDT, "PDNO": SAMSUNG, "ORD_DVSN": "01",
                                      "ORD_QTY": "1", "ORD_UNPR": "0"})
        finally:
            await pacer.close()
            await rest.aclose()
        odno = r.body["output"]["ODNO"]
        await wait_until(lambda: any(p.split("^")[13] == "2" for _, p in rec.notices), message="a fill notice")
        for tr_id, plain in rec.notices:
            fields = plain.split("^")
            self.assertEqual(tr_id, T.RT_NOTICE_LIVE)
            self.assertEqual(len(fields), 26, plain)
            self.assertEqual(fields[0], HTS_ID)  # CUST_ID
            self.assertEqual(fields[1], CANO + PRDT)  # ACNT_NO
            self.assertEqual(fields[2], odno)  # ODER_NO
            self.assertEqual(fields[8], SAMSUNG)  # STCK_SHRN_ISCD
        fill = next(p.split("^") for _, p in rec.notices if p.split("^")[13] == "2")
        self.assertEqual(int(fill[9]), 1)  # CNTG_QTY
        self.assertGreater(int(fill[10]), 0)  # CNTG_UNPR
        self.assertEqual(client.parser.failures, 0)


if __name__ == "__main__":
    unittest.main()
