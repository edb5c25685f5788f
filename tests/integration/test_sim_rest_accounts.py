"""Simulator REST conformance: account TRs — inquire-balance, inquire-psbl-order, inquire-daily-ccld, and
연속조회 paging (reference §3.2, §3.3, §4.5–§4.7)."""

from __future__ import annotations

import unittest
from datetime import datetime, timedelta
from typing import Any

import httpx

from kis.broker import fields as F
from kis.broker import trids as T
from kis.sim.symbols import KRX_SYMBOLS
from kis_testing import CANO, PRDT

from .sim_rest_support import JSON_TYPE, RestCase, balance_params

STARTING_CASH = 100_000_000
CURSOR_WIDTH = 100
PAGED_SYMBOLS = [s.code for s in KRX_SYMBOLS[:23]]  # more than one paper page (20), less than a live one (50)


class BalanceTest(RestCase):
    def assert_paged_body(self, r: httpx.Response, tr_cont: str) -> dict[str, Any]:
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["content-type"], JSON_TYPE)
        self.assertEqual(r.headers["tr_cont"], tr_cont)
        body: dict[str, Any] = r.json()
        self.assertEqual(body["rt_cd"], "0", body)
        self.assertEqual(len(body["ctx_area_fk100"]), CURSOR_WIDTH)
        self.assertEqual(len(body["ctx_area_nk100"]), CURSOR_WIDTH)
        self.assertEqual(len(body["msg1"]), 80)
        return body

    async def test_empty_account_shape(self) -> None:
        r = await self.balance()
        self.assertEqual(r.headers["tr_id"], "TTTC8434R")
        body = self.assert_paged_body(r, "D")
        self.assertEqual(set(body), {"ctx_area_fk100", "ctx_area_nk100", "output1", "output2", "rt_cd",
                                     "msg_cd", "msg1"})
        self.assertEqual(body["msg_cd"], "KIOK0510")
        self.assertEqual(body["msg1"].rstrip(), "조회가 완료되었습니다")
        self.assertEqual(body["output1"], [])
        self.assertIsInstance(body["output2"], list)
        self.assertEqual(len(body["output2"]), 1)
        summary = body["output2"][0]
        self.assertEqual(list(summary), list(F.BALANCE_OUTPUT2))
        self.assertTrue(all(isinstance(v, str) for v in summary.values()))
        self.assertEqual(summary["dnca_tot_amt"], str(STARTING_CASH))
        self.assertEqual(summary["scts_evlu_amt"], "0")
        self.assertEqual(summary["tot_evlu_amt"], str(STARTING_CASH))
        self.assertTrue(body["ctx_area_fk100"].startswith(f"{CANO}^{PRDT}^"))
        self.assertEqual(body["ctx_area_nk100"].strip(), "")

    async def test_positions_rows_and_summary_consistency(self) -> None:
        await self.ok_order(await self.buy("005930", 7))
        await self.ok_order(await self.buy("136480", 100))
        body = self.assert_paged_body(await self.balance(), "D")
        rows = body["output1"]
        self.assertEqual([row["pdno"] for row in rows], ["005930", "136480"])
        for row in rows:
            self.assertEqual(list(row), list(F.BALANCE_OUTPUT1))
            self.assertTrue(all(isinstance(v, str) for v in row.values()))
            qty, amt = int(row["hldg_qty"]), int(row["pchs_amt"])
            self.assertEqual(row["pchs_avg_pric"], f"{amt / qty:.4f}")
            self.assertEqual(int(row["evlu_amt"]), qty * int(row["prpr"]))
            self.assertEqual(int(row["evlu_pfls_amt"]), int(row["evlu_amt"]) - amt)
            self.assertRegex(row["evlu_pfls_rt"], r"^-?\d+\.\d{2}$")
        self.assertEqual(rows[0]["prdt_name"], "삼성전자")
        self.assertEqual(rows[1]["hldg_qty"], "100")
        summary = body["output2"][0]
        scts = sum(int(row["evlu_amt"]) for row in rows)
        self.assertEqual(int(summary["scts_evlu_amt"]), scts)
        self.assertEqual(int(summary["tot_evlu_amt"]), scts + int(summary["prvs_rcdl_excc_amt"]))
        self.assertEqual(int(summary["pchs_amt_smtl_amt"]), sum(int(row["pchs_amt"]) for row in rows))
        acct = await self.account_state()
        self.assertEqual(summary["dnca_tot_amt"], str(acct["cash"]))
        self.assertEqual(int(summary["thdt_buy_amt"]), STARTING_CASH - acct["cash"])

    async def test_sold_out_position_stays_with_zero_quantity(self) -> None:
        await self.ok_order(await self.buy("005930", 2))
        await self.ok_order(await self.sell("005930", 2))
        rows = (await self.balance()).json()["output1"]
        self.assertEqual(len(rows), 1)
        row = rows[0]
        self.assertEqual((row["hldg_qty"], row["thdt_buyqty"], row["thdt_sll_qty"]), ("0", "2", "2"))

    async def test_inqr_dvsn_02_is_rejected(self) -> None:
        r = await self.balance(INQR_DVSN="02")
        body = self.assert_input_error(r, "INQR_DVSN")
        self.assertEqual(body["msg1"].rstrip(), "ERROR : INPUT INVALID_CHECK_INQR_DVSN")
        self.assertEqual(r.headers["tr_id"], "TTTC8434R")

    async def test_missing_or_bad_query_fields(self) -> None:
        for name in ("PRCS_DVSN", "AFHR_FLPR_YN", "INQR_DVSN", "FUND_STTL_ICLD_YN"):
            with self.subTest(missing=name):
                r = await self.kis_get(T.INQUIRE_BALANCE_PATH, "TTTC8434R", _without(name))
                self.assert_input_error(r, name)
        self.assert_input_error(await self.balance(PRCS_DVSN="05"), "PRCS_DVSN")
        self.assert_input_error(await self.balance(AFHR_FLPR_YN="Q"), "AFHR_FLPR_YN")

    async def test_bad_account_number(self) -> None:
        body = self.assert_envelope(await self.balance(CANO="1234567"), 200, "7", "APAC0081")
        self.assert_padded(body["msg1"], "계좌번호 입력 오류입니다.")

    async def test_lowercase_query_names(self) -> None:
        await self.ok_order(await self.buy("005930", 1))
        params = {k.lower(): v for k, v in balance_params().items()}
        r = await self.kis_get(T.INQUIRE_BALANCE_PATH, "TTTC8434R", params)
        body = self.assert_paged_body(r, "D")
        self.assertEqual(body["output1"][0]["pdno"], "005930")

    async def test_live_page_holds_fifty(self) -> None:
        for code in PAGED_SYMBOLS:
            await self.ok_order(await self.buy(code, 1))
        body = self.assert_paged_body(await self.balance(), "D")
        self.assertEqual([row["pdno"] for row in body["output1"]], sorted(PAGED_SYMBOLS))
        self.assertEqual(body["ctx_area_nk100"].strip(), "")


def _without(name: str) -> dict[str, str]:
    params = balance_params()
    del params[name]
    return params


class PaperBalancePagingTest(RestCase):
    paper = True

    async def test_tr_cont_paging_over_twenty_positions(self) -> None:
        for code in PAGED_SYMBOLS:
            await self.ok_order(await self.buy(code, 1, tr_id="VTTC0012U"))
        first = await self.balance(tr_id="VTTC8434R")
        self.assertEqual(first.headers["tr_id"], "VTTC8434R")
        self.assertEqual(first.headers["tr_cont"], "F")
        page1 = first.json()
        self.assertEqual(page1["rt_cd"], "0")
        self.assertEqual(page1["msg_cd"], "KIOK0490")
        self.assertEqual(len(page1["output1"]), 20)
        nk, fk = page1["ctx_area_nk100"], page1["ctx_area_fk100"]
        self.assertEqual((len(nk), len(fk)), (CURSOR_WIDTH, CURSOR_WIDTH))
        self.assertNotEqual(nk.strip(), "")
        self.assertEqual(len(page1["output2"]), 1)

        # The next page: request header tr_cont "N", cursors passed back verbatim (padding included).
        second = await self.balance(tr_cont="N", tr_id="VTTC8434R", CTX_AREA_FK100=fk, CTX_AREA_NK100=nk)
        self.assertEqual(second.headers["tr_cont"], "E")
        page2 = second.json()
        self.assertEqual(page2["rt_cd"], "0")
        self.assertEqual(page2["msg_cd"], "KIOK0510")
        self.assertEqual(len(page2["output1"]), len(PAGED_SYMBOLS) - 20)
        self.assertEqual(page2["ctx_area_nk100"].strip(), "")
        codes = [row["pdno"] for row in page1["output1"] + page2["output1"]]
        self.assertEqual(codes, sorted(PAGED_SYMBOLS))  # complete, ordered, no overlap

        # Without tr_cont "N" the cursor is ignored: the first page again.
        again = await self.balance(tr_id="VTTC8434R", CTX_AREA_FK100=fk, CTX_AREA_NK100=nk)
        self.assertEqual(again.headers["tr_cont"], "F")
        self.assertEqual(again.json()["output1"], page1["output1"])

    async def test_live_balance_tr_on_paper_host(self) -> None:
        self.assert_envelope(await self.balance(tr_id="TTTC8434R"), 500, "1", "EGW00213")


class PsblOrderTest(RestCase):
    def _params(self, **overrides: str) -> dict[str, str]:
        return {"CANO": CANO, "ACNT_PRDT_CD": PRDT, "PDNO": "005930", "ORD_UNPR": "70000", "ORD_DVSN": "00",
                "CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N", **overrides}

    async def test_output_object_and_quantities(self) -> None:
        r = await self.kis_get(T.INQUIRE_PSBL_ORDER_PATH, "TTTC8908R", self._params())
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["tr_id"], "TTTC8908R")
        body = r.json()
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "KIOK0510"))
        self.assertEqual(len(body["msg1"]), 80)
        out = body["output"]
        self.assertIsInstance(out, dict)
        self.assertEqual(list(out), list(F.PSBL_ORDER_OUTPUT))
        self.assertTrue(all(isinstance(v, str) for v in out.values()))
        self.assertEqual(out["ord_psbl_cash"], str(STARTING_CASH))
        self.assertEqual(out["psbl_qty_calc_unpr"], "70000")
        self.assertEqual(out["max_buy_qty"], str(STARTING_CASH // 70000))
        self.assertEqual(out["nrcvb_buy_qty"], str(STARTING_CASH // 70000))

    async def test_market_order_quantity_uses_the_upper_limit(self) -> None:
        upper = int((await self.quote("005930"))["stck_mxpr"])
        params = self._params(ORD_DVSN="01", ORD_UNPR="")
        r = await self.kis_get(T.INQUIRE_PSBL_ORDER_PATH, "TTTC8908R", params)
        out = r.json()["output"]
        self.assertEqual(out["psbl_qty_calc_unpr"], str(upper))
        self.assertEqual(out["max_buy_qty"], str(STARTING_CASH // upper))

    async def test_open_buy_orders_reduce_orderable_cash(self) -> None:
        low = int((await self.quote("005930"))["stck_llam"])
        await self.ok_order(await self.buy("005930", 10, dvsn="00", price=low))
        r = await self.kis_get(T.INQUIRE_PSBL_ORDER_PATH, "TTTC8908R", self._params())
        self.assertEqual(r.json()["output"]["ord_psbl_cash"], str(STARTING_CASH - 10 * low))

    async def test_missing_field(self) -> None:
        params = self._params()
        del params["ORD_DVSN"]
        r = await self.kis_get(T.INQUIRE_PSBL_ORDER_PATH, "TTTC8908R", params)
        self.assert_input_error(r, "ORD_DVSN")


class PaperPsblOrderTest(RestCase):
    paper = True

    async def test_paper_id(self) -> None:
        params = {"CANO": CANO, "ACNT_PRDT_CD": PRDT, "PDNO": "005930", "ORD_UNPR": "70000", "ORD_DVSN": "00",
                  "CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N"}
        r = await self.kis_get(T.INQUIRE_PSBL_ORDER_PATH, "VTTC8908R", params)
        self.assertEqual(r.json()["rt_cd"], "0", r.text)
        r = await self.kis_get(T.INQUIRE_PSBL_ORDER_PATH, "TTTC8908R", params)
        self.assert_envelope(r, 500, "1", "EGW00213")


class DailyCcldTest(RestCase):
    async def _book(self) -> dict[str, str]:
        """A filled buy, a filled sell, and a resting buy on another symbol."""
        buy = await self.ok_order(await self.buy("005930", 10))
        sell = await self.ok_order(await self.sell("005930", 3))
        low = int((await self.quote("000660"))["stck_llam"])
        resting = await self.ok_order(await self.buy("000660", 2, dvsn="00", price=low))
        return {"buy": buy, "sell": sell, "resting": resting, "low": str(low)}

    async def test_shapes_and_rows(self) -> None:
        book = await self._book()
        r = await self.daily_ccld()
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["tr_id"], "TTTC0081R")
        self.assertEqual(r.headers["tr_cont"], "D")
        body = r.json()
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "KIOK0460"))
        self.assertEqual(len(body["msg1"]), 80)
        self.assertEqual(len(body["ctx_area_fk100"]), CURSOR_WIDTH)
        self.assertEqual(len(body["ctx_area_nk100"]), CURSOR_WIDTH)
        self.assertIsInstance(body["output1"], list)
        self.assertIsInstance(body["output2"], dict)
        self.assertEqual(list(body["output2"]), list(F.DAILY_CCLD_OUTPUT2))
        rows = body["output1"]
        for row in rows:
            self.assertEqual(list(row), list(F.DAILY_CCLD_OUTPUT1))
            self.assertTrue(all(isinstance(v, str) for v in row.values()))
            self.assertRegex(row["odno"], r"^\d{10}$")
            self.assertEqual(row["ord_dt"], await self.sim_today())
        # INQR_DVSN 00 = newest first.
        self.assertEqual([row["odno"] for row in rows], [book["resting"], book["sell"], book["buy"]])
        by_odno = {row["odno"]: row for row in rows}
        buy, sell, resting = by_odno[book["buy"]], by_odno[book["sell"]], by_odno[book["resting"]]
        self.assertEqual((buy["sll_buy_dvsn_cd"], buy["ord_qty"], buy["tot_ccld_qty"], buy["rmn_qty"]),
                         ("02", "10", "10", "0"))
        self.assertEqual((sell["sll_buy_dvsn_cd"], sell["tot_ccld_qty"], sell["pdno"]), ("01", "3", "005930"))
        self.assertEqual((resting["ord_unpr"], resting["tot_ccld_qty"], resting["rmn_qty"]),
                         (book["low"], "0", "2"))
        self.assertEqual(resting["prdt_name"], "SK하이닉스")
        self.assertEqual(int(buy["tot_ccld_amt"]), 10 * int(buy["avg_prvs"]))
        summary = body["output2"]
        self.assertEqual(summary["tot_ord_qty"], "15")
        self.assertEqual(summary["tot_ccld_qty"], "13")
        self.assertEqual(int(summary["tot_ccld_amt"]), int(buy["tot_ccld_amt"]) + int(sell["tot_ccld_amt"]))

    async def test_filters(self) -> None:
        book = await self._book()

        async def odnos(**overrides: str) -> list[str]:
            r = await self.daily_ccld(**overrides)
            self.assertEqual(r.json()["rt_cd"], "0", r.text)
            return [row["odno"] for row in r.json()["output1"]]

        self.assertEqual(await odnos(INQR_DVSN="01"), [book["buy"], book["sell"], book["resting"]])
        self.assertEqual(await odnos(SLL_BUY_DVSN_CD="01"), [book["sell"]])
        self.assertEqual(await odnos(SLL_BUY_DVSN_CD="02"), [book["resting"], book["buy"]])
        self.assertEqual(await odnos(CCLD_DVSN="01"), [book["sell"], book["buy"]])
        self.assertEqual(await odnos(CCLD_DVSN="02"), [book["resting"]])
        self.assertEqual(await odnos(PDNO="000660"), [book["resting"]])
        self.assertEqual(await odnos(ODNO=book["sell"]), [book["sell"]])
        self.assertEqual(await odnos(ODNO=str(int(book["sell"]))), [book["sell"]])
        today = datetime.strptime(await self.sim_today(), "%Y%m%d")
        yesterday = (today - timedelta(days=1)).strftime("%Y%m%d")
        self.assertEqual(await odnos(INQR_STRT_DT=yesterday, INQR_END_DT=yesterday), [])

    async def test_cancel_shows_as_its_own_row(self) -> None:
        book = await self._book()
        cancel = await self.ok_order(await self.revise(book["resting"], "02"))
        rows = {row["odno"]: row for row in (await self.daily_ccld()).json()["output1"]}
        self.assertEqual(rows[cancel]["orgn_odno"], book["resting"])
        self.assertEqual(rows[cancel]["cncl_yn"], "Y")
        self.assertEqual(rows[book["resting"]]["rmn_qty"], "0")

    async def test_old_and_long_range_tr_ids(self) -> None:
        await self._book()
        for tr_id in ("TTTC8001R", "CTSC9215R", "CTSC9115R"):
            with self.subTest(tr_id=tr_id):
                r = await self.daily_ccld(tr_id=tr_id)
                self.assertEqual(r.json()["rt_cd"], "0", r.text)
                self.assertEqual(len(r.json()["output1"]), 3)
                self.assertEqual(r.headers["tr_id"], tr_id)

    async def test_bad_inputs(self) -> None:
        self.assert_input_error(await self.daily_ccld(INQR_STRT_DT="2026-11-01"), "INQR_STRT_DT")
        self.assert_input_error(await self.daily_ccld(SLL_BUY_DVSN_CD="03"), "SLL_BUY_DVSN_CD")
        self.assert_input_error(await self.daily_ccld(CCLD_DVSN="9"), "CCLD_DVSN")


class PaperDailyCcldPagingTest(RestCase):
    paper = True

    async def test_fifteen_per_paper_page_f_m_e(self) -> None:
        odnos = [await self.ok_order(await self.buy("005930", 1, tr_id="VTTC0012U")) for _ in range(32)]
        seen: list[str] = []
        fk = nk = ""
        for page_no, (tr_cont, msg_cd, size) in enumerate((("F", "KIOK0490", 15), ("M", "KIOK0490", 15),
                                                           ("E", "KIOK0460", 2))):
            r = await self.daily_ccld(tr_cont="N" if page_no else "", tr_id="VTTC0081R", INQR_DVSN="01",
                                      CTX_AREA_FK100=fk, CTX_AREA_NK100=nk)
            self.assertEqual(r.status_code, 200, r.text)
            self.assertEqual(r.headers["tr_cont"], tr_cont)
            page = r.json()
            self.assertEqual(page["msg_cd"], msg_cd)
            self.assertEqual(len(page["output1"]), size)
            self.assertEqual(page["output2"]["tot_ord_qty"], "32")  # the summary covers the whole query
            fk, nk = page["ctx_area_fk100"], page["ctx_area_nk100"]
            self.assertEqual((len(fk), len(nk)), (CURSOR_WIDTH, CURSOR_WIDTH))
            self.assertEqual(nk.strip() == "", tr_cont == "E")
            seen.extend(row["odno"] for row in page["output1"])
        self.assertEqual(seen, odnos)  # INQR_DVSN 01: oldest first, complete, no overlap

if __name__ == "__main__":
    unittest.main()
