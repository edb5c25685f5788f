"""WebSocket fault injection through POST /__sim/faults: drops, silence, stale sessions, idle, latency."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

from kis.sim.engine import SimConfig
from kis_testing import wait_until

from .ws_support import WsTestCase, is_data, recv_closed, recv_data, recv_pingpong

PINGPONG_S = 0.2


class FaultCase(WsTestCase):
    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, pingpong_interval_s=PINGPONG_S, tick_interval_s=0.02)

    async def faults(self, **values: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self.admin("POST", "/faults", values)
        for name, value in values.items():
            self.assertEqual(answer[name], value)
        return answer

    async def counters(self) -> dict[str, int]:
        counters: dict[str, int] = (await self.ws_stats())["counters"]
        return counters


class DropTest(FaultCase):
    async def test_drop_after_is_an_abnormal_close(self) -> None:
        await self.faults(ws_drop_after_s=0.4)
        approval = await self.approval_key()
        loop = asyncio.get_running_loop()
        async with self.ws_connect() as ws:
            opened = loop.time()
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await recv_data(ws, "H0STCNT0")  # data flows until the drop
            closed = await recv_closed(ws)
            self.assertGreaterEqual(loop.time() - opened, 0.3)
            self.assertIsNone(closed.rcvd, "no close frame from the server")
            self.assertEqual(ws.close_code, 1006)
        self.assertEqual((await self.counters()).get("dropped_by_fault"), 1)
        await self.wait_for_sessions(0)

    async def test_clearing_the_fault_stops_the_drops(self) -> None:
        await self.faults(ws_drop_after_s=0.3)
        await self.faults(ws_drop_after_s=None)
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            # Several PINGPONG periods beyond the old drop time and the socket is still up.
            for _ in range(4):
                await recv_pingpong(ws, within=PINGPONG_S * 10)
            await recv_data(ws, "H0STCNT0")
        self.assertNotIn("dropped_by_fault", await self.counters())


class SilentTest(FaultCase):
    async def test_silent_session_acks_and_pings_but_sends_no_data(self) -> None:
        await self.faults(ws_silent=True)
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            ack = await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            self.assertEqual(ack["body"]["msg1"], "SUBSCRIBE SUCCESS")
            before = (await self.admin("GET", "/market/005930"))["acml_vol"]

            async def traded() -> bool:
                return (await self.admin("GET", "/market/005930"))["acml_vol"] > before

            await wait_until(traded, timeout=5.0, message="the market to trade while silent")
            for _ in range(3):
                text, _ = await recv_pingpong(ws, within=PINGPONG_S * 10)
                self.assertFalse(is_data(text))
            # recv_pingpong skips data frames, so check the counters: nothing was sent.
            session = await self.only_session()
            self.assertEqual((session["frames_sent"], session["records_sent"]), (0, 0))
            self.assertEqual(session["subscriptions"], ["H0STCNT0:005930"])
            # Lifting the fault resumes the feed on the same session.
            await self.faults(ws_silent=False)
            frame = await recv_data(ws, "H0STCNT0")
            self.assertEqual(frame.payload.split("^", 1)[0], "005930")

    async def test_silent_session_receives_no_data_frame_at_all(self) -> None:
        await self.faults(ws_silent=True)
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            for _ in range(4):  # everything that arrives over ~4 PINGPONG periods
                text = await asyncio.wait_for(ws.recv(), PINGPONG_S * 10)
                assert isinstance(text, str)
                self.assertFalse(is_data(text), text[:60])


class StaleSessionTest(FaultCase):
    async def drop_abnormally(self, subscriptions: list[tuple[str, str]]) -> float:
        """Open a session, subscribe, and lose it without a close frame; returns the loop time of the loss."""
        approval = await self.approval_key()
        ws = await self.ws_connect().__aenter__()
        for tr_id, tr_key in subscriptions:
            await self.subscribe_ok(ws, approval, tr_id, tr_key)
        ws.transport.abort()  # the client's network goes away: no close frame either way
        lost_at = asyncio.get_running_loop().time()
        await recv_closed(ws)
        await self.wait_for_sessions(0)
        return lost_at

    async def test_keys_held_until_unsubscribed(self) -> None:
        await self.faults(ws_stale_session=True, stale_grace_s=30.0)
        await self.drop_abnormally([("H0STCNT0", "005930"), ("H0STASP0", "005930")])
        self.assertEqual((await self.ws_stats())["ghost_keys"], 2)
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            held = await self.subscribe(ws, approval, "H0STCNT0", "005930")
            self.assertEqual(held["body"]["msg_cd"], "OPSP0002")
            self.assertEqual(held["body"]["msg1"], "ALREADY IN SUBSCRIBE")
            # A key the old session did not hold subscribes normally.
            await self.subscribe_ok(ws, approval, "H0STCNT0", "000660")
            # Unsubscribing the held key releases it (OPSP0001), then it subscribes (OPSP0000).
            released = await self.subscribe(ws, approval, "H0STCNT0", "005930", tr_type="2")
            self.assertEqual(released["body"]["msg_cd"], "OPSP0001")
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await recv_data(ws, "H0STCNT0", key="005930")
            # The other held key is still held.
            still = await self.subscribe(ws, approval, "H0STASP0", "005930")
            self.assertEqual(still["body"]["msg_cd"], "OPSP0002")
            self.assertEqual((await self.ws_stats())["ghost_keys"], 1)

    async def test_keys_released_after_grace(self) -> None:
        grace = 1.0
        await self.faults(ws_stale_session=True, stale_grace_s=grace)
        lost_at = await self.drop_abnormally([("H0STCNT0", "005930")])
        approval = await self.approval_key()
        loop = asyncio.get_running_loop()
        answers: list[str] = []
        async with self.ws_connect() as ws:

            async def subscribed() -> bool:
                ack = await self.subscribe(ws, approval, "H0STCNT0", "005930")
                answers.append(ack["body"]["msg_cd"])
                return ack["body"]["msg_cd"] == "OPSP0000"

            await wait_until(subscribed, timeout=grace + 5.0, interval=0.1, message="the grace to pass")
            released_after = loop.time() - lost_at
            await recv_data(ws, "H0STCNT0", key="005930")
        self.assertEqual(answers[0], "OPSP0002", "held right after the drop")
        self.assertEqual(set(answers[:-1]), {"OPSP0002"})
        self.assertGreaterEqual(released_after, grace - 0.2)

    async def test_clean_close_holds_nothing(self) -> None:
        await self.faults(ws_stale_session=True, stale_grace_s=30.0)
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, await self.approval_key(), "H0STCNT0", "005930")
        await self.wait_for_sessions(0)
        self.assertEqual((await self.ws_stats())["ghost_keys"], 0)
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, await self.approval_key(), "H0STCNT0", "005930")

    async def test_without_the_fault_an_abnormal_drop_holds_nothing(self) -> None:
        await self.drop_abnormally([("H0STCNT0", "005930")])
        self.assertEqual((await self.ws_stats())["ghost_keys"], 0)
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, await self.approval_key(), "H0STCNT0", "005930")


class IdleTimeoutTest(FaultCase):
    IDLE = 0.6

    async def test_session_that_sends_nothing_is_closed(self) -> None:
        await self.faults(ws_idle_timeout_s=self.IDLE)
        loop = asyncio.get_running_loop()
        async with self.ws_connect() as ws:
            opened = loop.time()
            await recv_closed(ws, within=self.IDLE + 5.0)
            self.assertGreaterEqual(loop.time() - opened, self.IDLE - 0.1)
        self.assertEqual((await self.counters()).get("idle_timeouts"), 1)

    async def test_subscribed_but_silent_client_is_closed_too(self) -> None:
        await self.faults(ws_idle_timeout_s=self.IDLE)
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, await self.approval_key(), "H0STCNT0", "005930")
            await recv_data(ws, "H0STCNT0")
            await recv_closed(ws, within=self.IDLE + 5.0)

    async def stays_open(self, answer: str) -> None:
        await self.faults(ws_idle_timeout_s=self.IDLE)
        loop = asyncio.get_running_loop()
        async with self.ws_connect() as ws:
            opened = loop.time()
            # Answer PINGPONG for well over twice the idle timeout.
            while loop.time() - opened < self.IDLE * 2.5:
                text, _ = await recv_pingpong(ws, within=PINGPONG_S * 10)
                if answer == "echo":
                    await ws.send(text)
                else:
                    await ws.pong(text)
            session = await self.only_session()
            self.assertGreaterEqual(session["pingpong_answered"], 4)
        self.assertNotIn("idle_timeouts", await self.counters())

    async def test_session_echoing_pingpong_stays_open(self) -> None:
        await self.stays_open("echo")

    async def test_session_answering_with_pong_frames_stays_open(self) -> None:
        await self.stays_open("pong")


class LatencyTest(FaultCase):
    async def test_latency_delays_data_frames_not_acks(self) -> None:
        latency_ms = 400.0
        await self.faults(latency_ms=latency_ms)
        approval = await self.approval_key()
        loop = asyncio.get_running_loop()
        async with self.ws_connect() as ws:
            sent = loop.time()
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            ack_after = loop.time() - sent
            frame = await recv_data(ws, "H0STCNT0")
            first_data_after = frame.received_at - sent
        self.assertLess(ack_after, latency_ms / 1000 * 0.75, "the ACK is not delayed")
        self.assertGreaterEqual(first_data_after, latency_ms / 1000 * 0.9)

    async def test_latency_is_a_delay_not_a_throughput_cap(self) -> None:
        latency_s = 0.15
        await self.faults(latency_ms=latency_s * 1000)
        approval = await self.approval_key()
        loop = asyncio.get_running_loop()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await recv_data(ws, "H0STCNT0")
            # One second of a 50-steps-per-second feed: serialising the delay would allow < 7 frames.
            start, frames = loop.time(), 0
            while loop.time() - start < 1.0:
                await recv_data(ws, "H0STCNT0")
                frames += 1
            self.assertGreaterEqual(frames, 15)
            # And control frames do not queue up behind a growing backlog.
            sent = loop.time()
            await self.subscribe_ok(ws, approval, "H0STASP0", "000660")
            self.assertLess(loop.time() - sent, latency_s + 0.35)

    async def test_zero_latency_baseline(self) -> None:
        approval = await self.approval_key()
        loop = asyncio.get_running_loop()
        async with self.ws_connect() as ws:
            sent = loop.time()
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            frame = await recv_data(ws, "H0STCNT0")
        self.assertLess(frame.received_at - sent, 0.3)


if __name__ == "__main__":
    unittest.main()
