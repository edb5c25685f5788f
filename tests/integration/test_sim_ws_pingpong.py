"""PINGPONG keep-alive conformance (reference §6.3): cadence, exact shape, every kind of answer."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import unittest
from datetime import datetime

from kis.sim.engine import SimConfig
from kis_testing import wait_until

from .ws_support import KST, WsTestCase, is_data, recv_data, recv_pingpong, recv_text

INTERVAL = 0.2


async def recv_pingpong_strict(ws: object) -> tuple[str, dict[str, object]]:
    """The very next frame, which must be a PINGPONG (no subscriptions, so no data in between)."""
    text = await recv_text(ws, asyncio.get_running_loop().time() + INTERVAL * 10, "the next PINGPONG")
    msg = json.loads(text)
    if msg.get("header", {}).get("tr_id") != "PINGPONG" or "body" in msg:
        raise AssertionError(f"expected a PINGPONG, got {text[:120]}")
    return text, msg


class PingPongCase(WsTestCase):
    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, pingpong_interval_s=INTERVAL, tick_interval_s=0.02)

    async def session_stat(self, name: str) -> int:
        value: int = (await self.only_session())[name]
        return value

    async def wait_stat(self, name: str, value: int) -> None:
        async def reached() -> bool:
            return await self.session_stat(name) == value

        await wait_until(reached, timeout=5.0, message=f"ws session {name} == {value}")


class PingPongShapeTest(PingPongCase):
    async def test_pingpong_shape_and_cadence(self) -> None:
        async with self.ws_connect() as ws:
            arrivals = []
            loop = asyncio.get_running_loop()
            for _ in range(4):
                text, msg = await recv_pingpong(ws, within=INTERVAL * 10)
                arrivals.append(loop.time())
                self.assertEqual(set(msg), {"header"}, "PINGPONG carries no body")
                self.assertEqual(set(msg["header"]), {"tr_id", "datetime"})
                self.assertEqual(msg["header"]["tr_id"], "PINGPONG")
                stamp = msg["header"]["datetime"]
                self.assertRegex(stamp, re.compile(r"\d{14}"))
                sent = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=KST)
                self.assertLess(abs((sent - datetime.now(KST)).total_seconds()), 15.0, "datetime is KST now")
                self.assertFalse(is_data(text))
            gaps = [b - a for a, b in itertools.pairwise(arrivals)]
            for gap in gaps:
                self.assertGreater(gap, INTERVAL * 0.5, gaps)
                self.assertLess(gap, INTERVAL * 4, gaps)

    async def test_pingpong_keeps_coming_alongside_data(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await recv_data(ws, "H0STCNT0")
            for _ in range(2):
                await recv_pingpong(ws, within=INTERVAL * 10)
            await recv_data(ws, "H0STCNT0")

    async def test_pingpong_keeps_coming_when_the_market_is_closed(self) -> None:
        # Sunday 2026-01-04 03:00 KST (Saturday afternoon in New York): KRX and NYSE closed.
        sunday = "2026-01-04T03:00:00+09:00"
        clock = await self.admin("POST", "/clock", {"session_mode": "krx", "set": sunday})
        self.assertFalse(clock["kr_open"] or clock["us_open"], clock)
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await self.subscribe_ok(ws, approval, "HDFSCNT0", "DNASAAPL")
            for _ in range(3):
                text = await asyncio.wait_for(ws.recv(), INTERVAL * 10)
                assert isinstance(text, str)
                self.assertFalse(is_data(text), "no trades while closed")
                msg = json.loads(text)
                self.assertEqual(msg["header"]["tr_id"], "PINGPONG")
                self.assertTrue(msg["header"]["datetime"].startswith("20260104"), "the sim clock's datetime")

    async def test_unanswered_pingpongs_count_as_sent_not_answered(self) -> None:
        async with self.ws_connect() as ws:
            for _ in range(3):
                await recv_pingpong(ws, within=INTERVAL * 10)
            session = await self.only_session()
            self.assertGreaterEqual(session["pingpong_sent"], 3)
            self.assertEqual(session["pingpong_answered"], 0)
            self.assertEqual((session["pingpong_echoes"], session["pongs"], session["pings"]), (0, 0, 0))


class PingPongAnswerTest(PingPongCase):
    async def test_text_echo_is_counted(self) -> None:
        async with self.ws_connect() as ws:
            text, _ = await recv_pingpong(ws)
            await ws.send(text)  # python-kis / mojito / 3P: echo the same text frame
            await self.wait_stat("pingpong_echoes", 1)
            # The echo is not answered (no error ACK): the next frame is simply the next PINGPONG.
            _, nxt = await recv_pingpong_strict(ws)
            self.assertEqual(nxt["header"]["tr_id"], "PINGPONG")
            session = await self.only_session()
            self.assertEqual(session["pingpong_answered"], 1)
            self.assertEqual((session["pongs"], session["pings"]), (0, 0))

    async def test_pong_frame_is_counted(self) -> None:
        async with self.ws_connect() as ws:
            text, _ = await recv_pingpong(ws)
            await ws.pong(text)  # official samples: websocket.pong(data)
            await self.wait_stat("pongs", 1)
            session = await self.only_session()
            self.assertEqual(session["pingpong_answered"], 1)
            self.assertEqual((session["pingpong_echoes"], session["pings"]), (0, 0))

    async def test_ping_frame_is_counted_and_answered(self) -> None:
        async with self.ws_connect() as ws:
            text, _ = await recv_pingpong(ws)
            pong_waiter = await ws.ping(text.encode())  # OTA:S01ws: send(data, OPCODE_PING)
            await asyncio.wait_for(pong_waiter, 5.0)  # the server answers the ping with a pong
            await self.wait_stat("pings", 1)
            session = await self.only_session()
            self.assertEqual(session["pingpong_answered"], 1)
            self.assertEqual((session["pingpong_echoes"], session["pongs"]), (0, 0))

    async def test_all_three_answers_add_up(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            text, _ = await recv_pingpong(ws)
            await ws.send(text)
            text, _ = await recv_pingpong(ws)
            await ws.pong(text)
            text, _ = await recv_pingpong(ws)
            await asyncio.wait_for(await ws.ping(text), 5.0)
            text, msg = await recv_pingpong(ws)
            await ws.send(json.dumps(msg))  # a re-serialised echo counts too
            await self.wait_stat("pingpong_answered", 4)
            session = await self.only_session()
            self.assertEqual((session["pingpong_echoes"], session["pongs"], session["pings"]), (2, 1, 1))
            self.assertGreaterEqual(session["pingpong_sent"], 4)
            # The echo did not disturb the subscription.
            self.assertEqual(session["subscriptions"], ["H0STCNT0:005930"])
            await recv_data(ws, "H0STCNT0")


if __name__ == "__main__":
    unittest.main()
