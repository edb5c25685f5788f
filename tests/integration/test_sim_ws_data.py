"""Realtime data-frame conformance (reference §6.4): framing, bundling, field counts and values."""

from __future__ import annotations

import re
import unittest
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from kis_testing import subscribe_msg

from .ws_support import (
    KST,
    N_H0STASP0,
    N_H0STCNT0,
    N_HDFSCNT0,
    DataFrame,
    WsTestCase,
    krx_tick,
    kst_stamp,
    on_krx_grid,
    recv_control,
    recv_data,
)

COUNT = re.compile(r"\d{3}")
HHMMSS = re.compile(r"([01]\d|2[0-3])[0-5]\d[0-5]\d")
YYYYMMDD = re.compile(r"20\d{6}")
INT = re.compile(r"-?\d+")
UINT = re.compile(r"\d+")
DEC2 = re.compile(r"-?\d+\.\d{2}")
CLOCK_SLACK_S = 15.0


def _sign_of(diff: int | float) -> str:
    return "2" if diff > 0 else "5" if diff < 0 else "3"


class DataFrameCase(WsTestCase):
    async def limits(self, code: str) -> dict[str, Any]:
        info: dict[str, Any] = await self.admin("GET", f"/market/{code}")
        base = info["base"]
        # ±30 % around the base (previous close), on the grid (reference §7).
        self.assertTrue(on_krx_grid(info["upper"]) and on_krx_grid(info["lower"]), info)
        self.assertLessEqual(info["upper"], base * 1.3)
        self.assertGreater(info["upper"] + krx_tick(info["upper"]), base * 1.3)
        self.assertGreaterEqual(info["lower"], base * 0.7)
        return info

    def assert_frame_header(self, frame: DataFrame, tr_id: str, enc: str = "0") -> None:
        self.assertEqual(frame.enc, enc)
        self.assertEqual(frame.tr_id, tr_id)
        self.assertRegex(frame.count, COUNT)
        self.assertGreaterEqual(frame.n, 1)

    def assert_near_now(self, stamp: datetime, now: datetime) -> None:
        self.assertLess(abs((stamp - now).total_seconds()), CLOCK_SLACK_S, (stamp, now))

    def check_h0stcnt0(self, r: list[str], code: str, lim: dict[str, Any]) -> None:
        self.assertEqual(len(r), N_H0STCNT0)
        for value in r:
            self.assertNotIn("|", value)
        self.assertEqual(r[0], code)
        self.assertRegex(r[1], HHMMSS)
        for i in (2, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 36, 37, 38, 39, 41, 45):
            self.assertRegex(r[i], UINT, f"field {i}")
        for i in (4, 17, 26, 29, 32):
            self.assertRegex(r[i], INT, f"field {i}")
        for i in (5, 18, 22, 23, 40, 42):
            self.assertRegex(r[i], DEC2, f"field {i}")
        price, base = int(r[2]), lim["base"]
        opn, high, low, ask1, bid1 = (int(r[i]) for i in (7, 8, 9, 10, 11))
        for p in (price, opn, high, low, ask1, bid1):
            self.assertTrue(on_krx_grid(p), f"{p} is off the KRX tick grid")
            self.assertTrue(lim["lower"] <= p <= lim["upper"], p)
        # 전일대비부호 / 전일대비 / 전일대비율 agree with the price and the base.
        expected = "1" if price == lim["upper"] else "4" if price == lim["lower"] else _sign_of(price - base)
        self.assertEqual(r[3], expected)
        self.assertEqual(int(r[4]), price - base)
        self.assertAlmostEqual(float(r[5]), (price - base) / base * 100, delta=0.006)
        self.assertTrue(low <= price <= high and low <= opn <= high, (low, opn, price, high))
        self.assertEqual(ask1, bid1 + krx_tick(bid1), "best ask and bid are adjacent ticks")
        self.assertIn(price, (ask1, bid1))
        cntg_vol, acml_vol = int(r[12]), int(r[13])
        self.assertGreaterEqual(cntg_vol, 1)
        self.assertGreaterEqual(acml_vol, cntg_vol)
        self.assertGreaterEqual(int(r[14]), low * acml_vol)
        self.assertLessEqual(int(r[14]), high * acml_vol)
        self.assertTrue(low <= float(r[6]) <= high, r[6])  # weighted average price
        self.assertEqual(int(r[17]), int(r[16]) - int(r[15]))  # 순매수체결건수 = 매수 − 매도
        self.assertLessEqual(int(r[19]) + int(r[20]), acml_vol)
        self.assertIn(r[21], ("1", "3", "5"))
        # Open/high/low time and comparison fields.
        for hour, sign, vrss, ref in ((24, 25, 26, opn), (27, 28, 29, high), (30, 31, 32, low)):
            self.assertRegex(r[hour], HHMMSS)
            self.assertEqual(int(r[vrss]), price - ref)
            self.assertEqual(r[sign], _sign_of(price - ref))
        self.assertRegex(r[33], YYYYMMDD)
        self.assert_near_now(kst_stamp(r[33], r[1]), datetime.now(KST))
        self.assertRegex(r[34], re.compile(r"[12345678]\d"))
        self.assertIn(r[35], ("Y", "N"))
        self.assertGreaterEqual(int(r[38]), int(r[36]))
        self.assertGreaterEqual(int(r[39]), int(r[37]))
        self.assertIn(r[43], ("0", "A", "B", "C", "D"))

    def check_h0stasp0(self, r: list[str], code: str, lim: dict[str, Any]) -> None:
        self.assertEqual(len(r), N_H0STASP0)
        for value in r:
            self.assertNotIn("|", value)
        self.assertEqual(r[0], code)
        self.assertRegex(r[1], HHMMSS)
        self.assertIn(r[2], ("0", "A", "B", "C", "D"))
        for i in range(3, 50):
            self.assertRegex(r[i], UINT, f"field {i}")
        asks = [int(x) for x in r[3:13]]
        bids = [int(x) for x in r[13:23]]
        self.assertEqual(asks, sorted(set(asks)), "asks ascending from the best")
        self.assertEqual(bids, sorted(set(bids), reverse=True), "bids descending from the best")
        self.assertGreater(asks[0], bids[0])
        for p in asks + bids:
            self.assertTrue(on_krx_grid(p), f"{p} is off the tick grid")
            self.assertTrue(lim["lower"] <= p <= lim["upper"], p)
        for lower_px, upper_px in zip([bids[0], *asks[:-1]], asks, strict=True):
            self.assertEqual(upper_px, lower_px + krx_tick(lower_px), "ask levels are consecutive ticks")
        ask_qty = [int(x) for x in r[23:33]]
        bid_qty = [int(x) for x in r[33:43]]
        self.assertTrue(all(q > 0 for q in ask_qty + bid_qty))
        self.assertEqual(int(r[43]), sum(ask_qty))
        self.assertEqual(int(r[44]), sum(bid_qty))
        self.assertRegex(r[50], INT)
        self.assertIn(r[51], ("1", "2", "3", "4", "5"))
        self.assertRegex(r[52], DEC2)
        self.assertRegex(r[53], UINT)
        for i in range(54, 58):
            self.assertRegex(r[i], INT, f"field {i}")

    def check_hdfscnt0(self, r: list[str], tr_key: str, symbol: str) -> None:
        self.assertEqual(len(r), N_HDFSCNT0)
        for value in r:
            self.assertNotIn("|", value)
        self.assertEqual(r[0], tr_key)  # RSYM first (the DOC/legacy layout; real frames start with it)
        self.assertEqual(r[1], symbol)
        self.assertEqual(r[2], "4")
        decimals = int(r[2])
        price_re = re.compile(rf"\d+\.\d{{{decimals}}}")
        for i in (3, 4, 6):
            self.assertRegex(r[i], YYYYMMDD)
        for i in (5, 7):
            self.assertRegex(r[i], HHMMSS)
        self.assert_near_now(kst_stamp(r[6], r[7]), datetime.now(KST))
        local = datetime.strptime(r[4] + r[5], "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo("America/New_York"))
        self.assert_near_now(local, datetime.now(KST))
        for i in (8, 9, 10, 11, 13, 15, 16):
            self.assertRegex(r[i], price_re, f"field {i}")
        opn, high, low, last = (float(r[i]) for i in (8, 9, 10, 11))
        self.assertTrue(low <= last <= high and low <= opn <= high, (low, opn, last, high))
        self.assertIn(r[12], ("1", "2", "3", "4", "5"))
        self.assertRegex(r[14], re.compile(r"[+-]\d+\.\d{2}"))  # explicit sign on RATE
        diff, rate = float(r[13]), float(r[14])  # DIFF is unsigned
        if r[12] == "3":
            self.assertEqual(diff, 0.0)
        else:
            up = r[12] in ("1", "2")
            self.assertEqual(rate > 0, up, (r[12], r[14]))
            base = last - diff if up else last + diff
            self.assertAlmostEqual(abs(rate), diff / base * 100, delta=0.006)
        self.assertLess(float(r[15]), float(r[16]))  # PBID < PASK
        for i in (17, 18, 19, 20, 21, 22, 23):
            self.assertRegex(r[i], UINT, f"field {i}")
        self.assertLessEqual(int(r[19]), int(r[20]))
        self.assertRegex(r[24], re.compile(r"\d+\.\d+"))
        self.assertIn(r[25], ("1", "2", "3"))


class DomesticPriceFrameTest(DataFrameCase):
    async def test_h0stcnt0_frames(self) -> None:
        lim = await self.limits("005930")
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            last_acml = 0
            for _ in range(25):
                frame = await recv_data(ws, "H0STCNT0")
                self.assert_frame_header(frame, "H0STCNT0")
                self.assertEqual(len(frame.payload.split("^")), N_H0STCNT0 * frame.n)
                for record in frame.records(N_H0STCNT0):
                    self.check_h0stcnt0(record, "005930", lim)
                    acml = int(record[13])
                    self.assertGreater(acml, last_acml, "ACML_VOL grows trade by trade")
                    self.assertEqual(acml - last_acml if last_acml else int(record[12]), int(record[12]))
                    last_acml = acml

    async def test_multi_record_bundles_follow_the_feed_burst(self) -> None:
        lim = await self.limits("000660")
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            for burst, count in ((5, "005"), (12, "012"), (1, "001")):
                with self.subTest(burst=burst):
                    feed = await self.admin("POST", "/feed", {"burst": burst})
                    self.assertEqual(feed["burst"], burst)
                    await self.subscribe_ok(ws, approval, "H0STCNT0", "000660")
                    for _ in range(4):
                        frame = await recv_data(ws, "H0STCNT0")
                        self.assertEqual(frame.count, count)
                        fields = frame.payload.split("^")
                        self.assertEqual(len(fields), N_H0STCNT0 * burst)
                        records = frame.records(N_H0STCNT0)
                        self.assertEqual(len(records), burst)
                        acml = [int(r[13]) for r in records]
                        self.assertEqual(acml, sorted(set(acml)), "records in trade order")
                        for r in records:
                            self.check_h0stcnt0(r, "000660", lim)
                    unsub = await self.subscribe(ws, approval, "H0STCNT0", "000660", tr_type="2")
                    self.assertEqual(unsub["body"]["msg_cd"], "OPSP0001")
            session = await self.only_session()
            self.assertGreaterEqual(session["frames_sent"], 12)
            self.assertGreaterEqual(session["records_sent"], 4 * (5 + 12 + 1))

    async def test_largest_bundle_999_records(self) -> None:
        lim = await self.limits("005930")
        await self.admin("POST", "/feed", {"burst": 999, "tick_interval_s": 0.3})
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            frame = await recv_data(ws, "H0STCNT0")
            self.assertEqual(frame.count, "999")
            records = frame.records(N_H0STCNT0)  # 45 954 fields, a frame far over 8 KB
            self.assertEqual(len(records), 999)
            acml = [int(r[13]) for r in records]
            self.assertEqual(acml, sorted(set(acml)))
            for r in records[::111]:
                self.check_h0stcnt0(r, "005930", lim)

    async def test_two_sessions_on_one_key_get_the_same_frames(self) -> None:
        async with self.ws_connect() as first, self.ws_connect() as second:
            await self.subscribe_ok(first, await self.approval_key(), "H0STCNT0", "005930")
            await self.subscribe_ok(second, await self.approval_key(app_key="PSsecond" + "q" * 28),
                                    "H0STCNT0", "005930")
            await recv_data(first, "H0STCNT0")  # both subscribed from here on
            from_first = {(await recv_data(first, "H0STCNT0")).payload for _ in range(8)}
            from_second = {(await recv_data(second, "H0STCNT0")).payload for _ in range(12)}
            self.assertTrue(from_first & from_second, "the same trades reach both subscribers")

    async def test_default_feed_frames_have_consistent_counts(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "035720")
            for _ in range(30):
                frame = await recv_data(ws, "H0STCNT0")
                self.assertTrue(1 <= frame.n <= 999)
                self.assertEqual(len(frame.records(N_H0STCNT0)), frame.n)

    async def test_low_priced_symbol_stays_on_fine_grid(self) -> None:
        lim = await self.limits("091990")  # ~1 890 won: 1-won ticks below 2 000, 5-won above
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "091990")
            for _ in range(10):
                for r in (await recv_data(ws, "H0STCNT0")).records(N_H0STCNT0):
                    self.check_h0stcnt0(r, "091990", lim)


class DomesticOrderbookFrameTest(DataFrameCase):
    async def test_h0stasp0_frames(self) -> None:
        approval = await self.approval_key()
        for code in ("005930", "136480"):
            with self.subTest(code=code):
                lim = await self.limits(code)
                async with self.ws_connect() as ws:
                    await self.subscribe_ok(ws, approval, "H0STASP0", code)
                    for _ in range(15):
                        frame = await recv_data(ws, "H0STASP0")
                        self.assert_frame_header(frame, "H0STASP0")
                        for record in frame.records(N_H0STASP0):
                            self.check_h0stasp0(record, code, lim)
                await self.wait_for_sessions(0)
                approval = await self.approval_key()

    async def test_price_and_orderbook_together(self) -> None:
        lim = await self.limits("005930")
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await self.subscribe_ok(ws, approval, "H0STASP0", "005930")
            seen: set[str] = set()
            while seen != {"H0STCNT0", "H0STASP0"}:
                frame = await recv_data(ws)
                seen.add(frame.tr_id)
                n = N_H0STCNT0 if frame.tr_id == "H0STCNT0" else N_H0STASP0
                check = self.check_h0stcnt0 if frame.tr_id == "H0STCNT0" else self.check_h0stasp0
                for record in frame.records(n):
                    check(record, "005930", lim)


class OverseasFrameTest(DataFrameCase):
    async def test_hdfscnt0_delayed_us_quotes(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            ack = await self.subscribe_ok(ws, approval, "HDFSCNT0", "DNASAAPL")
            self.assertEqual(ack["header"]["tr_key"], "DNASAAPL")
            for _ in range(10):
                frame = await recv_data(ws, "HDFSCNT0")
                self.assert_frame_header(frame, "HDFSCNT0")
                self.assertTrue(frame.payload.startswith("DNASAAPL^AAPL^"), frame.payload[:40])
                for record in frame.records(N_HDFSCNT0):
                    self.check_hdfscnt0(record, "DNASAAPL", "AAPL")

    async def test_realtime_and_day_session_keys_echo_the_subscribed_key(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "HDFSCNT0", "RBAQNVDA")
            await self.subscribe_ok(ws, approval, "HDFSCNT0", "DNASNVDA")
            seen: set[str] = set()
            while seen != {"RBAQNVDA", "DNASNVDA"}:
                frame = await recv_data(ws, "HDFSCNT0")
                records = frame.records(N_HDFSCNT0)
                keys = {r[0] for r in records}
                self.assertEqual(len(keys), 1, "one frame carries one subscription's records")
                for r in records:
                    self.check_hdfscnt0(r, r[0], "NVDA")
                seen |= keys


class UnsubscribeStopsDataTest(DataFrameCase):
    async def test_no_frames_after_unsubscribe_ack(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await self.subscribe_ok(ws, approval, "H0STCNT0", "000660")
            await recv_data(ws, "H0STCNT0", key="005930")
            await ws.send(subscribe_msg(approval, "H0STCNT0", "005930", tr_type="2"))
            # Frames queued before the ACK may still arrive; none may follow it.
            ack = await recv_control(ws)
            self.assertEqual(ack["body"]["msg_cd"], "OPSP0001")
            # The other subscription keeps ticking: use its frames as the clock (about 15 market steps).
            for _ in range(15):
                frame = await recv_data(ws, "H0STCNT0")
                for record in frame.records(N_H0STCNT0):
                    self.assertEqual(record[0], "000660", "data for an unsubscribed key")
            self.assertEqual((await self.only_session())["subscriptions"], ["H0STCNT0:000660"])


if __name__ == "__main__":
    unittest.main()
