"""Unit tests of the KIS adapter's pure parts: error table, realtime parser, slot allocator, REST pacer.

Frames are the real captures quoted in the protocol reference (§6.4.1, §6.4.4); no simulator involved.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import unittest

from kis.broker.errors import (
    CredentialsError,
    KisBusinessError,
    KisError,
    KisRequestError,
    KisServerError,
    RestRateLimitCooldownError,
    TokenExpiredError,
    TokenInvalidError,
    TokenIssueTooSoonError,
    TrMismatchError,
    error_for,
)
from kis.broker.fields import H0STCNT0, HDFSCNT0
from kis.broker.pacing import DEFAULT_UTILISATION, Priority, RatePacer
from kis.broker.realtime import RealtimeParser
from kis.broker.ws import SlotAllocator
from kis.clock import SystemClock

# Reference §6.4.1: two real H0STCNT0 captures (46 fields each).
CNT_2023 = ("005930^112616^62700^2^400^0.64^62700.41^62700^63000^62300^62700^62600^125^9694968^607878273600^"
            "25807^15918^-9889^93.01^4614191^4291558^1^0.45^63.03^090013^3^0^090646^5^-300^100741^2^400^"
            "20230324^20^N^71292^244009^2795345^2044512^0.16^5367918^180.61^0^^62700")
CNT_2026 = ("005930^115214^250500^5^-19500^-7.22^257548.62^266000^266500^248500^250500^250000^2^11701513^"
            "3013709268750^113664^103131^-10533^60.51^7129195^4313943^1^0.37^73.08^090025^5^-15500^090025^5^"
            "-16000^114825^2^2000^20260724^20^N^8930^67892^101158^466092^0.20^8331745^140.44^0^^266000")
# Reference §6.4.4: a real two-record HDFSCNT0 frame and a US day-session frame (26 fields each).
HDFS_2023 = ("0|HDFSCNT0|002|DNASAAPL^AAPL^4^20230502^20230502^091912^20230502^221912^169.9200^170.1000^"
             "169.4200^169.7850^2^0.1950^+0.11^169.7700^169.7900^201^5^1^108464^18414163^24757^20513^82.86^1^"
             "DNASAAPL^AAPL^4^20230502^20230502^091912^20230502^221912^169.9200^170.1000^169.4200^169.7900^2^"
             "0.2000^+0.12^169.7700^169.7900^201^2^3^108467^18414672^24757^20516^82.87^1")
HDFS_DAY = ("0|HDFSCNT0|001|RBAQNVDA^NVDA^4^20260925^20260924^231313^20260925^121313^223.9800^224.5000^"
            "223.5000^223.9800^5^0.6000^-0.27^223.9700^223.9900^10^20^5^52000^11650000^100^200^98.5^2")


class ErrorTableTest(unittest.TestCase):
    """errors.error_for: every KIS answer that is not a success becomes one typed error (reference §5)."""

    def check(self, code: str, status: int | None, cls: type[KisError], rt_cd: str | None = None, *,
              retryable: bool, outcome_known: bool = True) -> KisError:
        err = error_for(code, "msg", status, rt_cd)
        self.assertIs(type(err), cls, (code, status, rt_cd))
        self.assertEqual(err.retryable, retryable, code)
        self.assertEqual(err.outcome_known, outcome_known, code)
        self.assertEqual(err.http_status, status)
        self.assertEqual(err.message, "msg")
        return err

    def test_rate_limit_codes(self) -> None:
        self.check("EGW00201", 500, RestRateLimitCooldownError, "1", retryable=True)
        self.check("EGW00215", 500, RestRateLimitCooldownError, "1", retryable=True)
        err = self.check("", 429, RestRateLimitCooldownError, retryable=True)
        self.assertEqual(err.code, "HTTP429")

    def test_token_codes(self) -> None:
        self.check("EGW00123", 500, TokenExpiredError, "1", retryable=True)
        self.check("EGW00121", 500, TokenInvalidError, "1", retryable=True)
        self.check("EGW00205", 500, TokenInvalidError, "1", retryable=True)
        self.check("EGW00133", 403, TokenIssueTooSoonError, retryable=True)

    def test_configuration_codes_are_not_retryable(self) -> None:
        for code in ("EGW00102", "EGW00103", "EGW00104", "EGW00105"):
            self.check(code, 403, CredentialsError, retryable=False)
        self.check("EGW00213", 500, TrMismatchError, "1", retryable=False)
        self.check("OPSQ0002", 500, TrMismatchError, "1", retryable=False)
        for code in ("OPSQ2001", "OPSQ2002", "OPSQ9995", "OPSQ9997", "OPSQ9999"):
            self.check(code, 500, KisRequestError, "1", retryable=False)

    def test_unknown_5xx_is_a_server_error_with_unknown_outcome(self) -> None:
        err = self.check("EGW00002", 500, KisServerError, "1", retryable=True, outcome_known=False)
        self.assertEqual(err.code, "EGW00002")
        err = self.check("", 502, KisServerError, retryable=True, outcome_known=False)
        self.assertEqual(err.code, "HTTP502")

    def test_business_reject(self) -> None:
        err = self.check("40580000", 200, KisBusinessError, "1", retryable=False)
        assert isinstance(err, KisBusinessError)
        self.assertEqual((err.code, err.rt_cd), ("40580000", "1"))
        err = self.check("APBK0919", 200, KisBusinessError, "7", retryable=False)
        self.assertEqual(err.rt_cd, "7")  # type: ignore[attr-defined]

    def test_known_code_wins_over_http_status(self) -> None:
        # EGW00201 comes with HTTP 500: it is a rate limit, not an unknown server error.
        self.assertIsInstance(error_for("EGW00201", "", 500), RestRateLimitCooldownError)
        self.assertIsInstance(error_for("EGW00123", "", 200, "1"), TokenExpiredError)

    def test_fallback(self) -> None:
        err = self.check("", 400, KisError, retryable=False)
        self.assertEqual(err.code, "HTTP400")
        self.assertEqual(str(error_for("X1", "", 400)), "X1")
        self.assertEqual(str(error_for("X1", "boom", 400)), "X1: boom")


class RealtimeParserTest(unittest.TestCase):
    def setUp(self) -> None:
        self.parser = RealtimeParser()

    def test_real_h0stcnt0_captures(self) -> None:
        for payload in (CNT_2023, CNT_2026):
            frame = self.parser.parse(f"0|H0STCNT0|001|{payload}")
            assert frame is not None
            self.assertEqual((frame.tr_id, frame.encrypted), ("H0STCNT0", False))
            self.assertEqual(len(frame.records), 1)
            self.assertEqual(frame.records[0], payload.split("^"))
            self.assertEqual(len(frame.records[0]), 46)
        idx = self.parser.index("H0STCNT0")
        rec = self.parser.parse(f"0|H0STCNT0|001|{CNT_2026}").records[0]  # type: ignore[union-attr]
        self.assertEqual(rec[idx["MKSC_SHRN_ISCD"]], "005930")
        self.assertEqual(rec[idx["STCK_PRPR"]], "250500")
        self.assertEqual(rec[idx["PRDY_VRSS"]], "-19500")
        self.assertEqual(rec[idx["MRKT_TRTM_CLS_CODE"]], "")
        self.assertEqual(rec[idx["VI_STND_PRC"]], "266000")
        self.assertEqual(self.parser.failures, 0)

    def test_multi_record_frame(self) -> None:
        frame = self.parser.parse(f"0|H0STCNT0|002|{CNT_2023}^{CNT_2026}")
        assert frame is not None
        self.assertEqual(frame.records, [CNT_2023.split("^"), CNT_2026.split("^")])
        hdfs = self.parser.parse(HDFS_2023)
        assert hdfs is not None
        self.assertEqual(len(hdfs.records), 2)
        for rec in hdfs.records:
            self.assertEqual(len(rec), len(HDFSCNT0))
            self.assertEqual(rec[:2], ["DNASAAPL", "AAPL"])
            self.assertEqual(rec[-1], "1")
        self.assertEqual([r[11] for r in hdfs.records], ["169.7850", "169.7900"])  # LAST
        day = self.parser.parse(HDFS_DAY)
        assert day is not None
        self.assertEqual(day.records[0][0], "RBAQNVDA")
        self.assertEqual(day.records[0][14], "-0.27")  # RATE keeps its explicit sign
        self.assertEqual(self.parser.failures, 0)

    def test_appended_fields_per_record_are_tolerated(self) -> None:
        # KIS has appended fields before (H0STASP0 seen with 62 instead of 59): read the documented prefix.
        extra = "323750^0^0"
        one = self.parser.parse(f"0|H0STCNT0|001|{CNT_2023}^{extra}")
        assert one is not None
        self.assertEqual(one.records, [CNT_2023.split("^")])
        two = self.parser.parse(f"0|H0STCNT0|002|{CNT_2023}^{extra}^{CNT_2026}^{extra}")
        assert two is not None
        self.assertEqual(two.records, [CNT_2023.split("^"), CNT_2026.split("^")])
        self.assertTrue(all(len(r) == len(H0STCNT0) for r in two.records))
        asp = "^".join(["005930", "093730", "0", *["1"] * 56]) + "^323750^0^0"  # 62-field H0STASP0
        frame = self.parser.parse(f"0|H0STASP0|001|{asp}")
        assert frame is not None
        self.assertEqual(len(frame.records[0]), 59)
        self.assertEqual(self.parser.failures, 0)

    def test_malformed_frames_are_counted_and_kept(self) -> None:
        bad = [
            f"0|H0STCNT0|002|{CNT_2023}^{'^'.join(CNT_2026.split('^')[:45])}",  # 46 + 45 values for 2 records
            "0|H0STCNT0|001|005930^112616^62700",  # too short
            f"0|H0STCNT0|abc|{CNT_2023}",  # count not a number
            f"0|H0STCNT0|000|{CNT_2023}",  # zero records
            "0|H0STCNT0|001",  # no payload
            "hello",  # not a frame at all
            f"2|H0STCNT0|001|{CNT_2023}",  # unknown encryption flag
        ]
        for raw in bad:
            self.assertIsNone(self.parser.parse(raw), raw)
        self.assertEqual(self.parser.failures, len(bad))
        self.assertEqual([raw for _, raw in self.parser.failed_frames], bad)  # raw text kept for diagnosis
        reason = self.parser.failed_frames[0][0]
        self.assertIn("91 values", reason)

    def test_unknown_tr_id(self) -> None:
        raw = "0|H0STZZZ0|001|a^b^c"
        self.assertIsNone(self.parser.parse(raw))
        self.assertEqual(self.parser.failures, 1)
        reason, kept = self.parser.failed_frames[-1]
        self.assertIn("H0STZZZ0", reason)
        self.assertEqual(kept, raw)

    def test_failed_frames_are_bounded(self) -> None:
        for i in range(200):
            self.parser.parse(f"junk {i}")
        self.assertEqual(self.parser.failures, 200)
        self.assertLessEqual(len(self.parser.failed_frames), 50)
        self.assertEqual(self.parser.failed_frames[-1][1], "junk 199")

    def test_encrypted_frames_pass_through(self) -> None:
        frame = self.parser.parse("1|H0STCNI0|001|QUJDRA==")
        assert frame is not None
        self.assertTrue(frame.encrypted)
        self.assertEqual(frame.records, [["QUJDRA=="]])


class SlotAllocatorTest(unittest.TestCase):
    @staticmethod
    def k(i: int) -> tuple[str, str]:
        return ("H0STCNT0", f"{i:06d}")

    def test_capacity_41_and_lru_eviction(self) -> None:
        slots = SlotAllocator(41)
        slots.pin(("H0STCNT0", "005930"))
        slots.pin(("H0STCNT0", "000660"))
        for i in range(39):
            self.assertEqual(slots.touch(self.k(i)), [])
        self.assertEqual(len(slots), 41)
        self.assertEqual(slots.touch(self.k(100)), [self.k(0)])  # the least recently used goes first
        self.assertEqual(len(slots), 41)
        self.assertNotIn(self.k(0), slots)
        self.assertEqual(slots.touch(self.k(1)), [])  # a use moves it to the back of the line
        self.assertEqual(slots.touch(self.k(101)), [self.k(2)])
        self.assertEqual(slots.touch(self.k(102)), [self.k(3)])
        self.assertIn(self.k(1), slots)
        self.assertIn(("H0STCNT0", "005930"), slots)
        self.assertIn(("H0STCNT0", "000660"), slots)
        self.assertEqual(slots.keys()[:2], [("H0STCNT0", "005930"), ("H0STCNT0", "000660")])

    def test_pinned_are_never_evicted(self) -> None:
        slots = SlotAllocator(41)
        for i in range(40):
            slots.pin(self.k(i))
        slots.touch(self.k(500))
        self.assertEqual(slots.pin(self.k(40)), [self.k(500)])  # pinning evicts on-demand keys only
        self.assertEqual(len(slots), 41)
        with self.assertRaises(OverflowError):
            slots.touch(self.k(600))
        with self.assertRaises(OverflowError):
            slots.pin(self.k(601))
        self.assertEqual(set(slots.keys()), {self.k(i) for i in range(41)})
        self.assertEqual(slots.pin(self.k(3)), [])  # pinning again is a no-op
        self.assertEqual(slots.touch(self.k(3)), [])

    def test_held_keys_are_not_evicted_until_unheld(self) -> None:
        slots = SlotAllocator(3)
        slots.hold(self.k(1))  # a stream client reads it
        slots.hold(self.k(1))  # and a second one
        slots.touch(self.k(2))
        slots.touch(self.k(3))
        self.assertEqual(slots.touch(self.k(4)), [self.k(2)])  # k1 is the oldest, but held
        self.assertEqual(slots.touch(self.k(5)), [self.k(3)])
        slots.hold(self.k(4))
        slots.hold(self.k(5))
        with self.assertRaises(OverflowError):
            slots.touch(self.k(6))  # nothing evictable: the caller falls back to REST
        slots.unhold(self.k(1))
        with self.assertRaises(OverflowError):
            slots.touch(self.k(6))  # one holder is still reading k1
        slots.unhold(self.k(1))
        self.assertEqual(slots.touch(self.k(6)), [self.k(1)])
        self.assertEqual(set(slots.keys()), {self.k(4), self.k(5), self.k(6)})

    def test_pin_promotes_an_on_demand_key_and_remove(self) -> None:
        slots = SlotAllocator(3)
        slots.touch(self.k(1))
        slots.touch(self.k(2))
        slots.touch(self.k(3))
        self.assertEqual(slots.pin(self.k(1)), [])  # already has a slot: no eviction
        self.assertEqual(slots.touch(self.k(4)), [self.k(2)])
        self.assertEqual(slots.touch(self.k(5)), [self.k(3)])
        self.assertIn(self.k(1), slots)
        slots.remove(self.k(1))
        self.assertNotIn(self.k(1), slots)
        self.assertEqual(len(slots), 2)


class RatePacerTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.pacers: list[RatePacer] = []

    async def asyncTearDown(self) -> None:
        for pacer in self.pacers:
            await pacer.close()

    async def queued(self, pacer: RatePacer, n: int) -> None:
        """Wait (with a deadline) until ``n`` waiters are queued."""
        deadline = time.monotonic() + 2
        while pacer.queue_depth() < n:
            self.assertLess(time.monotonic(), deadline, "waiters never queued")
            await asyncio.sleep(0)

    def pacer(self, rate: float) -> RatePacer:
        pacer = RatePacer(rate, SystemClock())
        self.pacers.append(pacer)
        return pacer

    async def test_grants_are_spaced_at_rate_times_utilisation(self) -> None:
        pacer = self.pacer(10)
        interval = 1 / (10 * DEFAULT_UTILISATION)
        self.assertAlmostEqual(pacer.interval, interval)
        times: list[float] = []

        async def one() -> None:
            await pacer.acquire(Priority.QUOTE)
            times.append(time.monotonic())

        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(6))), 5)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for gap in gaps:
            self.assertGreaterEqual(gap, interval - 0.025, gaps)  # wake-up jitter only: never a burst
        self.assertGreaterEqual(times[-1] - times[1], 4 * interval - 0.025)
        self.assertEqual(pacer.granted, 6)

    async def test_orders_are_served_before_queued_quotes(self) -> None:
        pacer = self.pacer(20)
        await pacer.acquire(Priority.QUOTE)  # takes the free slot; everything below has to queue
        served: list[str] = []

        async def one(name: str, priority: Priority) -> None:
            await pacer.acquire(priority)
            served.append(name)

        tasks = [asyncio.create_task(one(f"q{i}", Priority.QUOTE)) for i in range(3)]
        tasks.append(asyncio.create_task(one("acct", Priority.ACCOUNT)))
        tasks += [asyncio.create_task(one(f"o{i}", Priority.ORDER)) for i in range(2)]
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        self.assertEqual(served, ["o0", "o1", "acct", "q0", "q1", "q2"])

    async def test_quote_waiters_with_max_wait_are_shed(self) -> None:
        pacer = self.pacer(5)  # one slot per ~210 ms
        await pacer.acquire(Priority.ORDER)
        t0 = time.monotonic()
        with self.assertRaises(RestRateLimitCooldownError) as ctx:
            await pacer.acquire(Priority.QUOTE, max_wait=0.15)
        self.assertLess(time.monotonic() - t0, 0.1)  # shed at once: it could never be served in time
        self.assertTrue(ctx.exception.retryable)
        self.assertEqual(pacer.shed, 1)

        # Waiters ahead count: two queued orders take the next two slots, so a quote that can wait
        # 300 ms (less than 2 intervals) is shed at once, one that can wait long enough is served.
        orders = [asyncio.create_task(pacer.acquire(Priority.ORDER)) for _ in range(2)]
        await self.queued(pacer, 2)
        t0 = time.monotonic()
        with self.assertRaises(RestRateLimitCooldownError):
            await pacer.acquire(Priority.QUOTE, max_wait=0.3)
        self.assertLess(time.monotonic() - t0, 0.1)
        await asyncio.wait_for(pacer.acquire(Priority.QUOTE, max_wait=2.0), 3)
        await asyncio.gather(*orders)
        self.assertEqual(pacer.shed, 2)
        self.assertGreater(pacer.retry_after(), 0)

    async def test_order_waiters_are_shed_only_when_their_time_is_up(self) -> None:
        pacer = self.pacer(2)  # ~526 ms per slot
        await pacer.acquire(Priority.ORDER)
        t0 = time.monotonic()
        with self.assertRaises(RestRateLimitCooldownError):
            await pacer.acquire(Priority.ORDER, max_wait=0.15)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.145)
        self.assertLess(elapsed, 0.45)  # at its deadline, not at the next slot
        await asyncio.wait_for(pacer.acquire(Priority.ORDER, max_wait=1.0), 2)

    async def test_cooldown_pauses_everyone(self) -> None:
        pacer = self.pacer(50)
        await pacer.acquire(Priority.ORDER)
        quote = asyncio.create_task(pacer.acquire(Priority.QUOTE, max_wait=0.15))
        await self.queued(pacer, 1)
        t0 = time.monotonic()
        pacer.cooldown(0.3)
        with self.assertRaises(RestRateLimitCooldownError):
            await asyncio.wait_for(quote, 1)
        self.assertLess(time.monotonic() - t0, 0.1)  # shed as soon as the cooldown made it hopeless
        await asyncio.wait_for(pacer.acquire(Priority.ORDER), 2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)  # orders wait out the cooldown too
        self.assertEqual(pacer.cooldowns, 1)

    async def test_cancelled_waiter_does_not_take_a_slot(self) -> None:
        pacer = self.pacer(20)
        await pacer.acquire(Priority.QUOTE)
        doomed = asyncio.create_task(pacer.acquire(Priority.ORDER))
        await self.queued(pacer, 1)
        doomed.cancel()
        await asyncio.wait_for(pacer.acquire(Priority.QUOTE), 2)
        self.assertEqual(pacer.granted, 2)
        self.assertEqual(pacer.queue_depth(), 0)

    async def test_shared_budget_failure_does_not_wedge_the_pacer(self) -> None:
        class Broken:
            async def take(self) -> bool:
                raise ConnectionError("redis down")

        pacer = RatePacer(50, SystemClock(), shared=Broken())
        self.pacers.append(pacer)
        await asyncio.wait_for(pacer.acquire(Priority.ORDER), 2)
        await asyncio.wait_for(pacer.acquire(Priority.ORDER), 2)
        self.assertEqual(pacer.granted, 2)

    async def test_shared_budget_refusal_delays(self) -> None:
        class Refuse:
            def __init__(self) -> None:
                self.calls = 0

            async def take(self) -> bool:
                self.calls += 1
                return self.calls > 2

        shared = Refuse()
        pacer = RatePacer(50, SystemClock(), shared=shared)
        self.pacers.append(pacer)
        t0 = time.monotonic()
        await asyncio.wait_for(pacer.acquire(Priority.ORDER), 2)
        self.assertGreaterEqual(time.monotonic() - t0, 2 * pacer.interval - 0.004)
        self.assertEqual(shared.calls, 3)


if __name__ == "__main__":
    unittest.main()


class OrderAnswerTest(unittest.TestCase):
    """Order numbers and order answers as different KIS-compatible servers spell them."""

    def test_order_numbers_have_one_spelling(self) -> None:
        from kis.broker.orders import odno

        self.assertEqual(odno("0001569157"), "0001569157")
        self.assertEqual(odno("6635"), "0000006635")  # paper samples send it bare
        self.assertEqual(odno(" 0000006635 "), "0000006635")
        for none in ("", "0000000000", None, "   "):
            self.assertEqual(odno(none), "", none)  # "no original order"

    def test_ack_without_order_number_is_an_unknown_outcome(self) -> None:
        from kis.broker.orders import KisOrderApi
        from kis.broker.rest import KisResponse

        api = KisOrderApi(None, paper=False)  # type: ignore[arg-type]  # only the answer parser is used
        ok = api._ack(KisResponse({"rt_cd": "0", "output": {"KRX_FWDG_ORD_ORGNO": "06010", "ODNO": "1569157",
                                                            "ORD_TMD": "155211"}}, ""))
        self.assertEqual((ok.order_no, ok.branch, ok.order_time), ("0001569157", "06010", "155211"))
        lower = api._ack(KisResponse({"rt_cd": "0", "output": {"odno": "0001569157", "krx_fwdg_ord_orgno": "06010"}},
                                     ""))
        self.assertEqual(lower.order_no, "0001569157")
        for output in ({}, {"ODNO": ""}, {"ODNO": "0000000000"}):
            with self.assertRaises(KisServerError) as ctx:
                api._ack(KisResponse({"rt_cd": "0", "output": output}, ""))
            self.assertFalse(ctx.exception.outcome_known)  # the executor makes it UNKNOWN, never resubmits
