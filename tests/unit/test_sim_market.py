import unittest
from datetime import datetime

from kis.broker.fields import H0STASP0, H0STCNT0, HDFSCNT0, INQUIRE_PRICE_OUTPUT
from kis.clock import KST, ManualClock
from kis.krx import is_on_tick
from kis.sim.market import Market


class MarketTest(unittest.TestCase):
    def setUp(self) -> None:
        self.market = Market(ManualClock(datetime(2026, 11, 23, 10, 0, 5, tzinfo=KST)), seed=3)

    def test_walk_stays_on_grid_within_limits(self) -> None:
        st = self.market.krx["005930"]
        for _ in range(5_000):
            trade = self.market.step_krx("005930")
            self.assertTrue(is_on_tick(trade.price))
            self.assertTrue(st.lower <= trade.price <= st.upper)
        self.assertGreater(st.acml_vol, 0)
        self.assertGreaterEqual(st.high, st.low)

    def test_seeded_walk_is_reproducible(self) -> None:
        other = Market(ManualClock(datetime(2026, 11, 23, 10, 0, 5, tzinfo=KST)), seed=3)
        a = [self.market.step_krx("000660").price for _ in range(200)]
        b = [other.step_krx("000660").price for _ in range(200)]
        self.assertEqual(a, b)

    def test_record_field_counts_and_consistency(self) -> None:
        self.market.step_krx("005930")
        self.market.mark_time()
        rec = self.market.h0stcnt0("005930").split("^")
        self.assertEqual(len(rec), len(H0STCNT0))
        row = dict(zip(H0STCNT0, rec, strict=True))
        st = self.market.krx["005930"]
        self.assertEqual(row["MKSC_SHRN_ISCD"], "005930")
        self.assertEqual(row["STCK_CNTG_HOUR"], "100005")
        self.assertEqual(row["BSOP_DATE"], "20261123")
        self.assertEqual(int(row["STCK_PRPR"]), st.price)
        self.assertEqual(int(row["PRDY_VRSS"]), st.price - st.base)
        self.assertEqual(int(row["NTBY_CNTG_CSNU"]), int(row["SHNU_CNTG_CSNU"]) - int(row["SELN_CNTG_CSNU"]))
        self.assertEqual(len(self.market.h0stasp0("005930").split("^")), len(H0STASP0))
        self.market.step_us("AAPL")
        us = self.market.hdfscnt0("AAPL").split("^")
        self.assertEqual(len(us), len(HDFSCNT0))
        self.assertEqual(us[0], "DNASAAPL")
        self.assertIn(us[14][0], "+-")

    def test_rest_quote_matches_last_tick(self) -> None:
        for _ in range(50):
            self.market.step_krx("035720")
        out = self.market.inquire_price("035720")
        self.assertEqual(tuple(out), INQUIRE_PRICE_OUTPUT)
        self.assertTrue(all(isinstance(v, str) for v in out.values()))
        self.assertEqual(out["stck_prpr"], str(self.market.krx["035720"].price))
        self.assertEqual(out["stck_shrn_iscd"], "035720")
