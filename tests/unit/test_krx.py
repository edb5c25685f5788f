import unittest

from hypothesis import given
from hypothesis import strategies as st

from kis.krx import is_on_tick, price_limits, round_to_tick, step_ticks, tick_size


class TickGridTest(unittest.TestCase):
    def test_tick_table(self) -> None:
        cases = {1_999: 1, 2_000: 5, 4_995: 5, 5_000: 10, 19_990: 10, 20_000: 50, 49_950: 50, 50_000: 100,
                 199_900: 100, 200_000: 500, 499_500: 500, 500_000: 1_000, 1_500_000: 1_000}
        for price, tick in cases.items():
            self.assertEqual(tick_size(price), tick, price)

    def test_documented_limits(self) -> None:
        # inquire-price doc example for 000660: base 128500 -> mxpr 167000, llam 90000.
        self.assertEqual(price_limits(128_500), (90_000, 167_000))

    def test_on_tick(self) -> None:
        self.assertTrue(is_on_tick(71_900))
        self.assertFalse(is_on_tick(71_950))
        self.assertFalse(is_on_tick(0))

    @given(st.integers(min_value=1, max_value=3_000_000))
    def test_round_lands_on_grid(self, price: int) -> None:
        for mode in ("nearest", "down", "up"):
            r = round_to_tick(price, mode)
            self.assertTrue(is_on_tick(r), (price, mode, r))
        self.assertLessEqual(round_to_tick(price, "down"), price)
        self.assertGreaterEqual(round_to_tick(price, "up"), price)

    @given(st.integers(min_value=2, max_value=2_000_000), st.integers(min_value=-5, max_value=5))
    def test_step_stays_on_grid(self, raw: int, n: int) -> None:
        price = round_to_tick(raw, "down")
        moved = step_ticks(price, n)
        self.assertTrue(is_on_tick(moved))
        if n > 0:
            self.assertGreater(moved, price)
        elif n < 0 and price > 1:
            self.assertLess(moved, price)

    @given(st.integers(min_value=1_000, max_value=2_000_000))
    def test_limits_within_30_percent(self, raw: int) -> None:
        base = round_to_tick(raw)
        lower, upper = price_limits(base)
        self.assertTrue(is_on_tick(lower) and is_on_tick(upper))
        self.assertLessEqual(upper, base * 1.3)
        self.assertGreaterEqual(lower, base * 0.7)
