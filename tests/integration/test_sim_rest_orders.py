"""Simulator REST conformance: order-cash and order-rvsecncl (reference §3.1, §3.2, §4.3, §4.4, §7)."""

from __future__ import annotations

import unittest
from datetime import datetime, timedelta

from kis.broker import trids as T
from kis.krx import step_ticks
from kis.sim.exchange import Notice
from kis_testing import CANO, PRDT, wait_until

from .sim_rest_support import JSON_TYPE, RestCase, order_body

SUNDAY = "2026-11-22T03:00:00+09:00"
MONDAY_OPEN = "2026-11-23T10:00:00+09:00"
STARTING_CASH = 100_000_000


class OrderCashTest(RestCase):
    async def test_market_buy_answer_shape(self) -> None:
        before = datetime.fromisoformat((await self.admin("GET", "/clock"))["now"]).replace(microsecond=0)
        r = await self.buy("005930", 10)
        after = datetime.fromisoformat((await self.admin("GET", "/clock"))["now"])
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["content-type"], JSON_TYPE)
        self.assertEqual(r.headers["tr_id"], "TTTC0012U")
        body = r.json()
        self.assertEqual(set(body), {"rt_cd", "msg_cd", "msg1", "output"})
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "APBK0013"))
        self.assert_padded(body["msg1"], "주문 전송 완료 되었습니다.")
        out = body["output"]
        # Order answers use UPPERCASE keys, unlike every quote/account TR.
        self.assertEqual(list(out), ["KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"])
        self.assertRegex(out["KRX_FWDG_ORD_ORGNO"], r"^\d{5}$")
        self.assertRegex(out["ODNO"], r"^\d{10}$")
        self.assertTrue(out["ODNO"].startswith("0"))  # zero-padded
        self.assertRegex(out["ORD_TMD"], r"^\d{6}$")
        # ORD_TMD is the KST time of acceptance (sim clock), HHMMSS.
        seconds = int((after - before).total_seconds()) + 1
        window = {(before + timedelta(seconds=i)).strftime("%H%M%S") for i in range(seconds + 1)}
        self.assertIn(out["ORD_TMD"], window)
        self.assertEqual((await self.stats())["orders"], 1)

    async def test_odno_is_unique_and_increasing(self) -> None:
        odnos = [await self.ok_order(await self.buy("005930", 1)) for _ in range(3)]
        self.assertEqual(len(set(odnos)), 3)
        self.assertEqual(odnos, sorted(odnos))

    async def test_market_buy_and_sell_move_cash_and_holdings(self) -> None:
        odno = await self.ok_order(await self.buy("005930", 10))
        acct = await self.account_state()
        order = next(o for o in acct["orders"] if o["odno"] == odno)
        self.assertEqual(order["filled"], 10)  # a small market order fills on arrival
        holding = acct["holdings"]["005930"]
        self.assertEqual(holding["qty"], 10)
        spent = STARTING_CASH - acct["cash"]
        self.assertEqual(spent, holding["cost"])
        self.assertEqual(spent % 10, 0)
        self.assertEqual(acct["reserved_cash"], 0)

        bal = (await self.balance()).json()
        row = next(p for p in bal["output1"] if p["pdno"] == "005930")
        self.assertEqual((row["hldg_qty"], row["ord_psbl_qty"], row["thdt_buyqty"]), ("10", "10", "10"))
        self.assertEqual(row["pchs_amt"], str(spent))
        self.assertEqual(bal["output2"][0]["dnca_tot_amt"], str(acct["cash"]))

        sell_odno = await self.ok_order(await self.sell("005930", 4))
        self.assertNotEqual(sell_odno, odno)
        acct2 = await self.account_state()
        self.assertEqual(acct2["holdings"]["005930"]["qty"], 6)
        sold = next(o for o in acct2["orders"] if o["odno"] == sell_odno)
        self.assertEqual((sold["side"], sold["filled"]), ("01", 4))
        self.assertGreater(acct2["cash"], acct["cash"])
        bal = (await self.balance()).json()
        row = next(p for p in bal["output1"] if p["pdno"] == "005930")
        self.assertEqual((row["hldg_qty"], row["thdt_sll_qty"]), ("6", "4"))

    async def test_limit_buy_rests_and_reserves_cash(self) -> None:
        quote = await self.quote("005930")
        low = int(quote["stck_llam"])
        odno = await self.ok_order(await self.buy("005930", 10, dvsn="00", price=low))
        acct = await self.account_state()
        order = next(o for o in acct["orders"] if o["odno"] == odno)
        self.assertEqual((order["filled"], order["price"]), (0, low))
        self.assertEqual(acct["reserved_cash"], 10 * low)
        self.assertEqual(acct["cash"], STARTING_CASH)

    async def test_limit_buy_at_or_above_ask_fills(self) -> None:
        state = await self.set_market_price("005930", 72000)
        price = step_ticks(state["price"], 3)
        odno = await self.ok_order(await self.buy("005930", 5, dvsn="00", price=price))
        await self.wait_filled(odno, 5)
        acct = await self.account_state()
        self.assertEqual(acct["holdings"]["005930"]["qty"], 5)
        self.assertLessEqual(acct["holdings"]["005930"]["cost"], 5 * price)  # never worse than the limit

    async def test_old_tr_ids_accepted(self) -> None:
        buy = await self.buy("005930", 2, tr_id="TTTC0802U")
        await self.ok_order(buy)
        self.assertEqual(buy.headers["tr_id"], "TTTC0802U")
        await self.ok_order(await self.sell("005930", 1, tr_id="TTTC0801U"))
        low = int((await self.quote("005930"))["stck_llam"])
        resting = await self.ok_order(await self.buy("005930", 1, dvsn="00", price=low))
        await self.ok_order(await self.revise(resting, "02", tr_id="TTTC0803U"))
        self.assertEqual((await self.account_state())["holdings"]["005930"]["qty"], 1)

    async def test_numeric_strings_with_ints_and_ord_unpr_zero_for_market(self) -> None:
        body = order_body("005930", 1)
        body["ORD_QTY"] = 1  # type: ignore[assignment]  # sloppy clients send numbers; KIS stringifies
        await self.ok_order(await self.kis_post(T.ORDER_CASH_PATH, "TTTC0012U", body))

    async def test_lowercase_body_keys_are_rejected_without_an_order(self) -> None:
        body = {k.lower(): v for k, v in order_body("005930", 1).items()}
        r = await self.kis_post(T.ORDER_CASH_PATH, "TTTC0012U", body)
        self.assert_input_error(r, "CANO")
        self.assertEqual(len(r.json()["msg1"]), 80)  # account/order TRs pad msg1
        mixed = {("pdno" if k == "PDNO" else k): v for k, v in order_body("005930", 1).items()}
        self.assert_input_error(await self.kis_post(T.ORDER_CASH_PATH, "TTTC0012U", mixed), "PDNO")
        stats = await self.stats()
        self.assertEqual((stats["orders"], stats["order_records"]), (0, 0))
        self.assertEqual(stats["rest_errors"].get("OPSQ2001"), 2)

    async def test_body_not_json_or_empty(self) -> None:
        r = await self.kis_post(T.ORDER_CASH_PATH, "TTTC0012U", content=b"CANO=12345678&PDNO=005930")
        self.assert_envelope(r, 500, "1", "OPSQ9997", "JSON PARSING ERROR")
        r = await self.kis_post(T.ORDER_CASH_PATH, "TTTC0012U", content=b"[1, 2]")
        self.assert_envelope(r, 500, "1", "OPSQ9997")
        r = await self.kis_post(T.ORDER_CASH_PATH, "TTTC0012U", content=b"")
        self.assert_envelope(r, 500, "1", "OPSQ9995", "JSON BODY가 없습니다.")
        self.assertEqual((await self.stats())["orders"], 0)

    async def test_missing_or_bad_fields(self) -> None:
        cases = [
            ({k: v for k, v in order_body("005930", 1).items() if k != "ORD_DVSN"}, "ORD_DVSN"),
            (order_body("999999", 1), "PDNO"),
            (order_body("005930", 0), "ORD_QTY"),
            (order_body("005930", 1, dvsn="99"), "ORD_DVSN"),
            (order_body("005930", 1, dvsn="00", price=0), "ORD_UNPR"),
            ({**order_body("005930", 1), "ORD_QTY": "1.5"}, "ORD_QTY"),
            ({**order_body("005930", 1), "ORD_QTY": "-1"}, "ORD_QTY"),
            ({**order_body("005930", 1), "ORD_QTY": "²"}, "ORD_QTY"),  # str.isdigit() but not a number
            ({**order_body("005930", 1), "ORD_QTY": "１"}, "ORD_QTY"),  # full-width digit
            ({**order_body("005930", 1, dvsn="00"), "ORD_UNPR": "７１９００"}, "ORD_UNPR"),
            ({**order_body("005930", 1), "EXCG_ID_DVSN_CD": "NYSE"}, "EXCG_ID_DVSN_CD"),
        ]
        for body, field in cases:
            with self.subTest(field=field, body=body):
                self.assert_input_error(await self.kis_post(T.ORDER_CASH_PATH, "TTTC0012U", body), field)
        self.assertEqual((await self.stats())["orders"], 0)

    async def test_bad_account_number(self) -> None:
        r = await self.kis_post(T.ORDER_CASH_PATH, "TTTC0012U", {**order_body("005930", 1), "CANO": "1234"})
        body = self.assert_envelope(r, 200, "7", "APAC0081")
        self.assert_padded(body["msg1"], "계좌번호 입력 오류입니다.")

    async def test_limit_price_off_the_tick_grid(self) -> None:
        r = await self.buy("005930", 1, dvsn="00", price=71950)  # tick is 100 at this price
        body = self.assert_envelope(r, 200, "7", "APBK0506")
        self.assert_padded(body["msg1"], "주문단가를 호가단위에 맞게 입력하십시오.")
        self.assertEqual((await self.stats())["orders"], 0)

    async def test_limit_price_outside_daily_limits(self) -> None:
        quote = await self.quote("005930")
        above = step_ticks(int(quote["stck_mxpr"]), 1)
        self.assert_envelope(await self.buy("005930", 1, dvsn="00", price=above), 200, "7", "APBK0563")
        self.assertEqual((await self.stats())["orders"], 0)

    async def test_insufficient_cash_counts_market_buys_at_the_upper_limit(self) -> None:
        quote = await self.quote("005930")
        upper = int(quote["stck_mxpr"])
        qty = STARTING_CASH // upper + 1  # affordable at today's price, not at the upper limit
        self.assertLess(qty * int(quote["stck_prpr"]), STARTING_CASH)
        r = await self.buy("005930", qty)
        body = self.assert_envelope(r, 200, "7", "APBK0952")
        self.assertEqual(len(body["msg1"]), 80)
        await self.ok_order(await self.buy("005930", qty - 1))

    async def test_sell_more_than_held(self) -> None:
        self.assert_envelope(await self.sell("005930", 1), 200, "7", "APBK0400")
        await self.ok_order(await self.buy("005930", 3))
        self.assert_envelope(await self.sell("005930", 4), 200, "7", "APBK0400")
        # Shares committed to an open sell order are not sellable twice.
        high = int((await self.quote("005930"))["stck_mxpr"])
        await self.ok_order(await self.sell("005930", 2, dvsn="00", price=high))
        self.assert_envelope(await self.sell("005930", 2), 200, "7", "APBK0400")
        stats = await self.stats()
        self.assertEqual(stats["orders"], 2)
        self.assertEqual(stats["rest_errors"].get("APBK0400"), 3)

    async def test_large_order_fills_over_several_market_steps(self) -> None:
        fills: list[Notice] = []
        self.sim.exchange.listeners.append(lambda n: fills.append(n) if n.kind == "fill" else None)
        odno = await self.ok_order(await self.buy("091990", 2000))
        await self.wait_filled(odno, 2000)
        mine = [n for n in fills if n.order.odno == odno]
        self.assertEqual(sum(n.qty for n in mine), 2000)
        self.assertGreaterEqual(len(mine), 4)
        self.assertTrue(all(0 < n.qty <= 500 for n in mine), [n.qty for n in mine])  # fill_liquidity
        acct = await self.account_state()
        self.assertEqual(acct["holdings"]["091990"]["qty"], 2000)
        self.assertEqual(acct["reserved_cash"], 0)
        self.assertEqual(acct["cash"], STARTING_CASH - acct["holdings"]["091990"]["cost"])
        ccld = (await self.daily_ccld(ODNO=odno)).json()
        self.assertEqual(ccld["output1"][0]["tot_ccld_qty"], "2000")
        self.assertEqual(ccld["output1"][0]["rmn_qty"], "0")


class OrderRvseCnclTest(RestCase):
    async def _resting_buy(self, qty: int = 10) -> tuple[str, int]:
        low = int((await self.quote("005930"))["stck_llam"])
        return await self.ok_order(await self.buy("005930", qty, dvsn="00", price=low)), low

    async def test_modify_gives_new_odno_then_cancel_releases_the_rest(self) -> None:
        odno, low = await self._resting_buy()
        new_price = step_ticks(low, 1)
        r = await self.revise(odno, "01", price=new_price, dvsn="00", qty_all="Y")
        self.assertEqual(r.status_code, 200, r.text)
        body = r.json()
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "APBK0013"))
        self.assert_padded(body["msg1"], "주문 전송 완료 되었습니다.")
        self.assertEqual(list(body["output"]), ["KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"])
        new_odno = body["output"]["ODNO"]
        self.assertRegex(new_odno, r"^\d{10}$")
        self.assertNotEqual(new_odno, odno)
        acct = await self.account_state()
        orders = {o["odno"]: o for o in acct["orders"]}
        self.assertEqual(orders[odno]["cancelled"], 10)
        self.assertEqual((orders[new_odno]["orgn_odno"], orders[new_odno]["kind"]), (odno, "1"))
        self.assertEqual((orders[new_odno]["qty"], orders[new_odno]["price"]), (10, new_price))
        self.assertEqual(acct["reserved_cash"], 10 * new_price)

        r = await self.revise(new_odno, "02", qty_all="Y")
        cancel_odno = await self.ok_order(r)
        self.assertNotIn(cancel_odno, (odno, new_odno))
        acct = await self.account_state()
        self.assertEqual(acct["reserved_cash"], 0)
        self.assertEqual(acct["cash"], STARTING_CASH)
        orders = {o["odno"]: o for o in acct["orders"]}
        self.assertEqual(orders[new_odno]["cancelled"], 10)
        self.assertEqual((orders[cancel_odno]["kind"], orders[cancel_odno]["orgn_odno"]), ("2", new_odno))
        # Nothing left to cancel or modify.
        body = self.assert_envelope(await self.revise(new_odno, "02", qty_all="Y"), 200, "7", "APBK0918")
        self.assertEqual(len(body["msg1"]), 80)
        self.assert_envelope(await self.revise(odno, "01", price=new_price), 200, "7", "APBK0918")

    async def test_partial_modify_and_partial_cancel(self) -> None:
        odno, low = await self._resting_buy(10)
        r = await self.revise(odno, "01", qty=4, price=step_ticks(low, 2), qty_all="N")
        new_odno = await self.ok_order(r)
        r = await self.revise(odno, "02", qty=3, qty_all="N")
        await self.ok_order(r)
        orders = {o["odno"]: o for o in (await self.account_state())["orders"]}
        self.assertEqual(orders[odno]["cancelled"], 7)
        self.assertEqual(orders[new_odno]["qty"], 4)
        acct = await self.account_state()
        self.assertEqual(acct["reserved_cash"], 3 * low + 4 * step_ticks(low, 2))
        # Modifying more than remains is rejected.
        r = await self.revise(odno, "01", qty=4, price=low, qty_all="N")
        self.assert_envelope(r, 200, "7", "APBK0917")

    async def test_cancel_of_a_partly_filled_order_releases_the_rest(self) -> None:
        odno = await self.ok_order(await self.buy("091990", 20_000))  # fills 500 per market step
        cancel = await self.ok_order(await self.revise(odno, "02", qty_all="Y"))
        acct = await self.account_state()
        orders = {o["odno"]: o for o in acct["orders"]}
        orig = orders[odno]
        self.assertGreaterEqual(orig["filled"], 500)
        self.assertGreater(orig["cancelled"], 0)
        self.assertEqual(orig["filled"] + orig["cancelled"], 20_000)
        self.assertEqual(orders[cancel]["qty"], orig["cancelled"])
        self.assertEqual(acct["reserved_cash"], 0)
        self.assertEqual(acct["holdings"]["091990"]["qty"], orig["filled"])
        self.assertEqual(acct["cash"], STARTING_CASH - acct["holdings"]["091990"]["cost"])
        # Filled quantity cannot be cancelled: nothing is left.
        self.assert_envelope(await self.revise(odno, "02"), 200, "7", "APBK0918")

    async def test_unpadded_original_order_number(self) -> None:
        odno, _ = await self._resting_buy(1)
        await self.ok_order(await self.revise(str(int(odno)), "02"))
        self.assertEqual((await self.account_state())["reserved_cash"], 0)

    async def test_cancel_of_unknown_odno_rejected(self) -> None:
        for odno in ("0009999999", "abc", "0000000001"):
            with self.subTest(odno=odno):
                body = self.assert_envelope(await self.revise(odno, "02"), 200, "7", "APBK1664")
                self.assert_padded(body["msg1"], "원주문번호가 존재하지 않습니다.")

    async def test_order_of_another_account_cannot_be_cancelled(self) -> None:
        odno, _ = await self._resting_buy(1)
        r = await self.revise(odno, "02", CANO="87654321")
        self.assert_envelope(r, 200, "7", "APBK1664")
        self.assertGreater((await self.account_state())["reserved_cash"], 0)

    async def test_bad_revise_inputs(self) -> None:
        odno, low = await self._resting_buy(1)
        self.assert_input_error(await self.revise(odno, "03"), "RVSE_CNCL_DVSN_CD")
        self.assert_input_error(await self.revise(odno, "02", qty_all="X"), "QTY_ALL_ORD_YN")
        self.assert_envelope(await self.revise(odno, "01", price=low + 1), 200, "7", "APBK0506")
        r = await self.kis_post(T.ORDER_RVSECNCL_PATH, "TTTC0013U", {"cano": CANO, "acnt_prdt_cd": PRDT})
        self.assert_input_error(r, "CANO")
        self.assertEqual((await self.account_state())["reserved_cash"], low)


class MarketClosedTest(RestCase):
    async def test_live_orders_rejected_on_a_sunday(self) -> None:
        odno = await self.ok_order(await self.buy("005930", 1, dvsn="00",
                                                  price=int((await self.quote("005930"))["stck_llam"])))
        clock = await self.admin("POST", "/clock", {"session_mode": "krx", "set": SUNDAY})
        self.assertFalse(clock["kr_open"])
        body = self.assert_envelope(await self.buy("005930", 1), 200, "7", "APBK0919")
        self.assert_padded(body["msg1"], "장운영일자가 주문일과 상이합니다.")
        self.assert_envelope(await self.sell("005930", 1), 200, "7", "APBK0919")
        self.assert_envelope(await self.revise(odno, "02"), 200, "7", "APBK0919")
        self.assertEqual((await self.stats())["orders"], 1)
        # Quotes still answer while the market is closed.
        self.assertEqual((await self.quote("005930"))["stck_shrn_iscd"], "005930")

    async def test_orders_accepted_inside_krx_hours(self) -> None:
        clock = await self.admin("POST", "/clock", {"session_mode": "krx", "set": MONDAY_OPEN})
        self.assertTrue(clock["kr_open"])
        r = await self.buy("005930", 1)
        await self.ok_order(r)
        self.assertTrue(r.json()["output"]["ORD_TMD"].startswith("10"))


class PaperOrderTest(RestCase):
    paper = True

    async def test_paper_v_ids_work(self) -> None:
        buy = await self.buy("005930", 3, tr_id="VTTC0012U")
        await self.ok_order(buy)
        self.assertEqual(buy.headers["tr_id"], "VTTC0012U")
        await self.ok_order(await self.sell("005930", 1, tr_id="VTTC0011U"))
        await self.ok_order(await self.buy("005930", 1, tr_id="VTTC0802U"))
        low = int((await self.quote("005930"))["stck_llam"])
        resting = await self.ok_order(await self.buy("005930", 1, dvsn="00", price=low))
        await self.ok_order(await self.revise(resting, "02", tr_id="VTTC0013U"))
        self.assertEqual((await self.account_state())["holdings"]["005930"]["qty"], 3)

    async def test_live_order_tr_on_paper_host(self) -> None:
        r = await self.buy("005930", 1, tr_id="TTTC0012U")
        self.assert_envelope(r, 500, "1", "EGW00213")
        self.assertEqual((await self.stats())["orders"], 0)

    async def test_paper_is_krx_only(self) -> None:
        self.assert_input_error(await self.buy("005930", 1, EXCG_ID_DVSN_CD="NXT"), "EXCG_ID_DVSN_CD")
        await self.ok_order(await self.buy("005930", 1, EXCG_ID_DVSN_CD="KRX"))

    async def test_paper_market_closed(self) -> None:
        await self.admin("POST", "/clock", {"session_mode": "krx", "set": SUNDAY})
        r = await self.buy("005930", 1)
        self.assertEqual(r.status_code, 200)
        body = r.json()
        self.assertEqual(body["msg_cd"], "40580000")
        self.assertNotEqual(body["rt_cd"], "0")
        self.assertEqual(body["msg1"].strip(), "모의투자 장종료 입니다.")
        self.assertNotIn("output", body)
        self.assertEqual((await self.stats())["orders"], 0)


class LiveNxtOrderTest(RestCase):
    async def test_live_accepts_nxt_and_sor(self) -> None:
        for excg in ("NXT", "SOR", "krx"):
            with self.subTest(excg=excg):
                await self.ok_order(await self.buy("005930", 1, EXCG_ID_DVSN_CD=excg))

    async def test_resting_sell_above_the_market_is_not_filled(self) -> None:
        await self.ok_order(await self.buy("005930", 2))
        high = int((await self.quote("005930"))["stck_mxpr"])
        odno = await self.ok_order(await self.sell("005930", 2, dvsn="00", price=high))
        steps = self.sim.market.krx["005930"].acml_vol

        async def market_stepped() -> bool:
            return self.sim.market.krx["005930"].acml_vol > steps + 3

        # The market loop trades a symbol with an open order on its own; the order must still rest.
        await wait_until(market_stepped, timeout=3.0, message="market steps on a symbol with an open order")
        acct = await self.account_state()
        order = next(o for o in acct["orders"] if o["odno"] == odno)
        self.assertEqual(order["filled"], 0)
        self.assertEqual(acct["holdings"]["005930"]["sellable"], 0)

if __name__ == "__main__":
    unittest.main()
