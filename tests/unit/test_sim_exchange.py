import unittest
from datetime import datetime

from kis.clock import KST, ManualClock
from kis.sim.exchange import BUY, LIMIT, MARKET, SELL, Exchange, OrderReject
from kis.sim.market import Market, Trade

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)


class ExchangeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.market = Market(ManualClock(NOW), seed=1)
        self.ex = Exchange(self.market, starting_cash=100_000_000, fill_liquidity=100)
        self.notices: list = []
        self.ex.listeners.append(self.notices.append)
        self.acct = self.ex.account("12345678", "01", "app")

    def test_market_buy_fills_within_liquidity_then_on_trades(self) -> None:
        order = self.ex.place(self.acct, "005930", BUY, MARKET, 250, 0, NOW)
        self.assertEqual(order.filled, 100)  # one step's liquidity
        self.assertEqual([n.kind for n in self.notices], ["ack", "fill"])
        self.ex.on_trade(Trade("005930", self.market.krx["005930"].price, 1))
        self.ex.on_trade(Trade("005930", self.market.krx["005930"].price, 1))
        self.assertEqual(order.filled, 250)
        self.assertEqual(self.acct.holdings["005930"].qty, 250)
        self.assertEqual(self.acct.reserved_cash, 0)
        self.assertEqual(self.acct.cash, 100_000_000 - order.filled_amount)

    def test_limit_buy_rests_until_price_reaches_it(self) -> None:
        st = self.market.krx["005930"]
        limit = st.price - 1_000
        order = self.ex.place(self.acct, "005930", BUY, LIMIT, 10, limit, NOW)
        self.assertEqual(order.filled, 0)
        self.assertEqual(self.acct.reserved_cash, 10 * limit)
        self.ex.on_trade(Trade("005930", limit + 100, 5))
        self.assertEqual(order.filled, 0)
        self.ex.on_trade(Trade("005930", limit - 100, 5))
        self.assertEqual(order.filled, 10)
        self.assertEqual(self.acct.cash, 100_000_000 - 10 * (limit - 100))

    def test_open_orders_end_with_their_trading_day(self) -> None:
        st = self.market.krx["005930"]
        limit = st.price - 1_000
        resting = self.ex.place(self.acct, "005930", BUY, LIMIT, 10, limit, NOW)
        self.assertEqual(self.acct.reserved_cash, 10 * limit)
        self.assertEqual(self.ex.end_day("20261123"), 0)  # same day: nothing ends
        self.assertEqual(self.ex.end_day("20261124"), 1)
        self.assertFalse(resting.is_open)
        self.assertEqual((resting.expired, resting.remaining, resting.cancelled), (10, 0, 0))
        self.assertEqual(self.acct.reserved_cash, 0)
        self.ex.on_trade(Trade("005930", limit - 100, 50))  # the next day's prices do not fill it
        self.assertEqual(resting.filled, 0)
        with self.assertRaises(OrderReject):
            self.ex.cancel(resting, None, NOW)

    def test_cash_and_holdings_guard(self) -> None:
        with self.assertRaises(OrderReject) as err:
            self.ex.place(self.acct, "005930", BUY, LIMIT, 2_000, 71_900, NOW)
        self.assertEqual(err.exception.msg_cd, "APBK0952")
        with self.assertRaises(OrderReject):
            self.ex.place(self.acct, "005930", SELL, MARKET, 1, 0, NOW)

    def test_modify_and_cancel(self) -> None:
        st = self.market.krx["000660"]
        order = self.ex.place(self.acct, "000660", BUY, LIMIT, 10, st.lower, NOW)
        new = self.ex.modify(order, None, st.lower + 100, LIMIT, NOW)
        self.assertNotEqual(new.odno, order.odno)
        self.assertEqual(new.orgn_odno, order.odno)
        self.assertEqual(order.remaining, 0)
        self.assertEqual(self.acct.reserved_cash, 10 * (st.lower + 100))
        cancel = self.ex.cancel(new, None, NOW)
        self.assertEqual(cancel.rvse_cncl, "2")
        self.assertEqual(self.acct.reserved_cash, 0)
        with self.assertRaises(OrderReject):
            self.ex.cancel(new, None, NOW)

    def test_odno_is_ten_digits(self) -> None:
        order = self.ex.place(self.acct, "005930", BUY, MARKET, 1, 0, NOW)
        self.assertRegex(order.odno, r"^\d{10}$")

    def test_every_app_key_of_the_account_gets_each_notice(self) -> None:
        self.assertIs(self.ex.account("12345678", "01", "other"), self.acct)
        self.assertEqual(self.acct.app_keys, {"app", "other"})
        self.ex.account("87654321", "01", "third")  # another account: not a recipient here
        order = self.ex.place(self.acct, "005930", BUY, MARKET, 1, 0, NOW)
        self.assertEqual([(n.app_key, n.kind) for n in self.notices],
                         [("app", "ack"), ("other", "ack"), ("app", "fill"), ("other", "fill")])
        self.assertTrue(all(n.order is order for n in self.notices))
