"""Simulator REST conformance, second batch: the TRs python-kis and mojito2 need beyond the first suite.

search-info (CTPF1604R), search-stock-info (CTPF1002R), inquire-asking-price-exp-ccn (FHKST01010200),
overseas price-detail (HHDFS76200200), inquire-psbl-rvsecncl (TTTC0084R / old TTTC8036R), repeated slashes
in the path (mojito2 requests ``//uapi/...``) and execution notices for every app key of an account
(reference §3, §4.1, §4.8, §6.4.3; field lists as the portal docs and the official samples give them).
"""

from __future__ import annotations

import re
import unittest
from typing import Any

import httpx

from kis.broker import fields as F
from kis.broker import trids as T
from kis.krx import tick_size
from kis.sim.engine import SimConfig
from kis.sim.symbols import KRX_BY_CODE, US_BY_SYMBOL
from kis_testing import APP_KEY, APP_SECRET, CANO, PRDT

from .sim_rest_support import JSON_TYPE, MSG1_WIDTH, RestCase, order_body, rvsecncl_body
from .ws_support import N_H0STASP0, N_H0STCNI0, WsTestCase, aes_decrypt, recv_data

SIGNS = {"1", "2", "3", "4", "5"}
PADDED_CURSOR = re.compile(r"^.{100}$")
QUIET = 3600.0  # market step interval that keeps prices still: only admin-forced trades move them


def psbl_params(inqr_dvsn_1: str = "0", inqr_dvsn_2: str = "0", **overrides: str) -> dict[str, str]:
    params = {"CANO": CANO, "ACNT_PRDT_CD": PRDT, "INQR_DVSN_1": inqr_dvsn_1, "INQR_DVSN_2": inqr_dvsn_2,
              "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    params.update(overrides)
    return params


class QuietRestCase(RestCase):
    """No market steps between calls: prices move only when a test forces a trade through the admin API."""

    def sim_config(self) -> SimConfig:
        return SimConfig(paper=self.paper, rate_limit_per_s=self.rate_limit_per_s, token_min_interval_s=60.0,
                         tick_interval_s=QUIET)


# --- search-info / search-stock-info -------------------------------------------------------------------


class SearchInfoTest(RestCase):
    async def _info(self, pdno: str, type_cd: str = "300") -> httpx.Response:
        return await self.kis_get(T.SEARCH_INFO_PATH, T.SEARCH_INFO, {"PDNO": pdno, "PRDT_TYPE_CD": type_cd})

    async def test_krx_stock_shape_and_values(self) -> None:
        r = await self._info("005930")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["content-type"], JSON_TYPE)
        self.assertEqual(r.headers["tr_id"], T.SEARCH_INFO)
        self.assertEqual(r.headers["tr_cont"], "")  # "tr_cont를 이용한 다음조회 불가 API"
        self.assert_wire_header_names(r)
        body = r.json()
        self.assertEqual(set(body), {"output", "rt_cd", "msg_cd", "msg1"})
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "KIOK0530"))
        self.assert_padded(body["msg1"], "조회되었습니다")
        out = body["output"]
        self.assertIsInstance(out, dict)
        self.assertEqual(len(F.SEARCH_INFO_OUTPUT), 20)
        self.assertEqual(list(out), list(F.SEARCH_INFO_OUTPUT))
        self.assertEqual(list(out)[:5], ["pdno", "prdt_type_cd", "prdt_name", "prdt_name120", "prdt_abrv_name"])
        self.assertEqual(list(out)[-1], "frst_erlm_dt")
        self.assertTrue(all(isinstance(v, str) for v in out.values()))
        # Measured on the live server: pdno is the 12-character internal number, shtn_pdno the code.
        self.assertEqual(out["pdno"], "00000A005930")
        self.assertEqual(out["shtn_pdno"], "005930")
        self.assertEqual(out["prdt_type_cd"], "300")
        self.assertEqual(out["prdt_abrv_name"], "삼성전자")
        self.assertEqual(out["prdt_name"], "삼성전자보통주")
        self.assertEqual(out["std_pdno"], "KR7005930003")

    async def test_isin_of_common_and_preferred_stock(self) -> None:
        # Real ISINs (표준코드): the 6th digit is 1 for the first preferred class, then a check digit.
        for code, isin in (("005930", "KR7005930003"), ("000660", "KR7000660001"),
                           ("005935", "KR7005931001"), ("005385", "KR7005381009")):
            with self.subTest(code=code):
                out = (await self._info(code)).json()["output"]
                self.assertEqual(out["std_pdno"], isin)
                self.assertEqual(out["prdt_abrv_name"], KRX_BY_CODE[code].name)

    async def test_pdno_forms(self) -> None:
        for pdno in ("00000A005930", "A005930", "005930"):
            with self.subTest(pdno=pdno):
                body = (await self._info(pdno)).json()
                self.assertEqual(body["rt_cd"], "0", body)
                self.assertEqual(body["output"]["shtn_pdno"], "005930")

    async def test_us_symbols_need_their_exchange_type(self) -> None:
        for symbol, type_cd in (("AAPL", "512"), ("KO", "513"), ("SPY", "529")):
            with self.subTest(symbol=symbol):
                body = (await self._info(symbol, type_cd)).json()
                self.assertEqual(body["rt_cd"], "0", body)
                out = body["output"]
                self.assertEqual(list(out), list(F.SEARCH_INFO_OUTPUT))
                self.assertEqual((out["pdno"], out["shtn_pdno"], out["prdt_type_cd"]), (symbol, symbol, type_cd))
                self.assertEqual(out["prdt_eng_name"], US_BY_SYMBOL[symbol].name)

    async def test_no_such_product_is_rt_cd_7(self) -> None:
        # python-kis walks the product types and moves on when rt_cd is 7 ("조회된 데이터가 없는 경우").
        for pdno, type_cd in (("AAPL", "513"), ("AAPL", "300"), ("005930", "512"), ("999999", "300"),
                              ("005930", "301")):
            with self.subTest(pdno=pdno, type_cd=type_cd):
                r = await self._info(pdno, type_cd)
                body = self.assert_envelope(r, 200, "7", "KIOK0560", "조회할 내용이 없습니다")
                self.assertEqual(len(body["msg1"]), MSG1_WIDTH)

    async def test_bad_inputs(self) -> None:
        cases = [({"PDNO": "005930", "PRDT_TYPE_CD": "999"}, "PRDT_TYPE_CD"),
                 ({"PDNO": "005930"}, "PRDT_TYPE_CD"),
                 ({"PRDT_TYPE_CD": "300"}, "PDNO"),
                 ({"PDNO": "", "PRDT_TYPE_CD": "300"}, "PDNO")]
        for params, field in cases:
            with self.subTest(params=params):
                r = await self.kis_get(T.SEARCH_INFO_PATH, T.SEARCH_INFO, params)
                self.assert_input_error(r, field)

    async def test_lowercase_query_names(self) -> None:
        r = await self.kis_get(T.SEARCH_INFO_PATH, T.SEARCH_INFO, {"pdno": "000660", "prdt_type_cd": "300"})
        self.assertEqual(r.json()["output"]["shtn_pdno"], "000660")


class SearchStockInfoTest(RestCase):
    async def _stock_info(self, pdno: str, type_cd: str = "300") -> httpx.Response:
        return await self.kis_get(T.SEARCH_STOCK_INFO_PATH, T.SEARCH_STOCK_INFO,
                                  {"PRDT_TYPE_CD": type_cd, "PDNO": pdno})

    async def test_shape_market_and_listed_shares(self) -> None:
        r = await self._stock_info("005930")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["tr_id"], T.SEARCH_STOCK_INFO)
        body = r.json()
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "KIOK0530"))
        self.assert_padded(body["msg1"], "조회되었습니다")
        out = body["output"]
        self.assertEqual(len(F.SEARCH_STOCK_INFO_OUTPUT), 67)
        self.assertEqual(list(out), list(F.SEARCH_STOCK_INFO_OUTPUT))
        self.assertEqual(list(out)[:3], ["pdno", "prdt_type_cd", "mket_id_cd"])
        self.assertEqual(list(out)[-2:], ["cptt_trad_tr_psbl_yn", "nxt_tr_stop_yn"])
        self.assertEqual((out["pdno"], out["mket_id_cd"], out["scty_grp_id_cd"]), ("00000A005930", "STK", "ST"))
        self.assertEqual(out["lstg_stqt"], str(KRX_BY_CODE["005930"].listed_shares))
        self.assertEqual(out["kospi200_item_yn"], "Y")
        self.assertEqual(out["stck_kind_cd"], "101")
        self.assertEqual(out["std_pdno"], "KR7005930003")
        quote = await self.quote("005930")
        self.assertEqual(out["lstg_stqt"], quote["lstn_stcn"])
        self.assertEqual(out["bfdy_clpr"], quote["stck_sdpr"])
        kosdaq = (await self._stock_info("136480")).json()["output"]
        self.assertEqual((kosdaq["mket_id_cd"], kosdaq["kospi200_item_yn"]), ("KSQ", "N"))
        self.assertTrue(kosdaq["kosdaq_mket_lstg_dt"])
        self.assertEqual(kosdaq["scts_mket_lstg_dt"], "")
        preferred = (await self._stock_info("005935")).json()["output"]
        self.assertEqual(preferred["stck_kind_cd"], "201")

    async def test_closing_price_follows_the_market(self) -> None:
        state = await self.set_market_price("000660", 130000)
        out = (await self._stock_info("000660")).json()["output"]
        self.assertEqual(out["thdt_clpr"], str(state["price"]))
        self.assertEqual(out["bfdy_clpr"], str(state["base"]))

    async def test_no_data_and_bad_inputs(self) -> None:
        self.assert_envelope(await self._stock_info("999999"), 200, "7", "KIOK0560")
        self.assert_envelope(await self._stock_info("005930", "302"), 200, "7", "KIOK0560")
        self.assert_input_error(await self._stock_info("005930", "512"), "PRDT_TYPE_CD")
        self.assert_input_error(await self._stock_info(""), "PDNO")


# --- inquire-asking-price-exp-ccn ----------------------------------------------------------------------


class AskingPriceTest(QuietRestCase, WsTestCase):
    async def _book(self, code: str, market: str = "J") -> httpx.Response:
        return await self.kis_get(T.ASKING_PRICE_PATH, T.ASKING_PRICE,
                                  {"FID_COND_MRKT_DIV_CODE": market, "FID_INPUT_ISCD": code})

    async def test_shape(self) -> None:
        r = await self._book("005930")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["tr_id"], T.ASKING_PRICE)
        self.assertEqual(r.headers["tr_cont"], "")
        self.assert_wire_header_names(r)
        body = r.json()
        self.assertEqual(set(body), {"output1", "output2", "rt_cd", "msg_cd", "msg1"})
        self.assertEqual((body["rt_cd"], body["msg_cd"], body["msg1"]), ("0", "MCA00000", "정상처리 되었습니다."))
        book, expected = body["output1"], body["output2"]
        # Both are objects (the official sample wraps each in a one-row DataFrame).
        self.assertIsInstance(book, dict)
        self.assertIsInstance(expected, dict)
        self.assertEqual(list(book), list(F.ASKING_PRICE_OUTPUT1))
        self.assertEqual(len(book), 71)
        names = list(book)
        self.assertEqual(names[0], "aspr_acpt_hour")
        self.assertEqual(names[1:11], [f"askp{i}" for i in range(1, 11)])
        self.assertEqual(names[11:21], [f"bidp{i}" for i in range(1, 11)])
        self.assertEqual(names[21:31], [f"askp_rsqn{i}" for i in range(1, 11)])
        self.assertEqual(names[31:41], [f"bidp_rsqn{i}" for i in range(1, 11)])
        self.assertEqual(names[-2:], ["ntby_aspr_rsqn", "new_mkop_cls_code"])
        self.assertEqual(list(expected), list(F.ASKING_PRICE_OUTPUT2))
        self.assertEqual(list(expected), [
            "antc_mkop_cls_code", "stck_prpr", "stck_oprc", "stck_hgpr", "stck_lwpr", "stck_sdpr", "antc_cnpr",
            "antc_cntg_vrss_sign", "antc_cntg_vrss", "antc_cntg_prdy_ctrt", "antc_vol", "stck_shrn_iscd",
            "vi_cls_code"])
        self.assertTrue(all(isinstance(v, str) for v in (*book.values(), *expected.values())))

    async def test_book_is_a_consistent_ladder(self) -> None:
        for code in ("005930", "136480", "207940"):
            with self.subTest(code=code):
                body = (await self._book(code)).json()
                book, expected = body["output1"], body["output2"]
                state = await self.admin("GET", f"/market/{code}")  # the admin read moves nothing
                asks = [int(book[f"askp{i}"]) for i in range(1, 11)]
                bids = [int(book[f"bidp{i}"]) for i in range(1, 11)]
                lower, upper = state["lower"], state["upper"]
                for price in asks + bids:
                    self.assertEqual(price % tick_size(price), 0, price)
                    self.assertTrue(lower <= price <= upper, price)
                self.assertEqual(asks, sorted(asks))
                self.assertEqual(bids, sorted(bids, reverse=True))
                self.assertGreater(asks[0], bids[0])
                ask_qty = [int(book[f"askp_rsqn{i}"]) for i in range(1, 11)]
                bid_qty = [int(book[f"bidp_rsqn{i}"]) for i in range(1, 11)]
                self.assertEqual(int(book["total_askp_rsqn"]), sum(ask_qty))
                self.assertEqual(int(book["total_bidp_rsqn"]), sum(bid_qty))
                self.assertEqual(int(book["ntby_aspr_rsqn"]), sum(bid_qty) - sum(ask_qty))
                self.assertRegex(book["aspr_acpt_hour"], r"^\d{6}$")
                # output2: the last trade sits inside the best quotes; the base is the previous close.
                prpr = int(expected["stck_prpr"])
                self.assertEqual(prpr, state["price"])
                self.assertTrue(bids[0] <= prpr <= asks[0], (bids[0], prpr, asks[0]))
                self.assertEqual(int(expected["stck_sdpr"]), state["base"])
                self.assertTrue(int(expected["stck_lwpr"]) <= prpr <= int(expected["stck_hgpr"]))
                self.assertEqual(expected["stck_shrn_iscd"], code)
                self.assertIn(expected["antc_cntg_vrss_sign"], SIGNS)

    async def test_rest_book_equals_the_h0stasp0_record(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STASP0", "005930")
            await self.set_market_price("005930", 72500)  # one forced trade: one H0STASP0 record
            frame = await recv_data(ws, "H0STASP0", key="005930")
            record = frame.records(N_H0STASP0)[-1]
            body = (await self._book("005930")).json()
        book, expected = body["output1"], body["output2"]
        wire = dict(zip(F.H0STASP0, record, strict=True))
        for i in range(1, 11):
            for rest_name, ws_name in ((f"askp{i}", f"ASKP{i}"), (f"bidp{i}", f"BIDP{i}"),
                                       (f"askp_rsqn{i}", f"ASKP_RSQN{i}"), (f"bidp_rsqn{i}", f"BIDP_RSQN{i}")):
                self.assertEqual(book[rest_name], wire[ws_name], rest_name)
        for rest_name, ws_name in (("total_askp_rsqn", "TOTAL_ASKP_RSQN"), ("total_bidp_rsqn", "TOTAL_BIDP_RSQN")):
            self.assertEqual(book[rest_name], wire[ws_name])
        for rest_name, ws_name in (("antc_cnpr", "ANTC_CNPR"), ("antc_vol", "ANTC_VOL"),
                                   ("antc_cntg_vrss", "ANTC_CNTG_VRSS"),
                                   ("antc_cntg_vrss_sign", "ANTC_CNTG_VRSS_SIGN"),
                                   ("antc_cntg_prdy_ctrt", "ANTC_CNTG_PRDY_CTRT")):
            self.assertEqual(expected[rest_name], wire[ws_name], rest_name)
        self.assertEqual(book["aspr_acpt_hour"], wire["BSOP_HOUR"])

    async def test_markets_lowercase_and_bad_inputs(self) -> None:
        for market in ("J", "NX", "UN"):
            self.assertEqual((await self._book("005930", market)).json()["rt_cd"], "0")
        r = await self.kis_get(T.ASKING_PRICE_PATH, T.ASKING_PRICE,
                               {"fid_cond_mrkt_div_code": "J", "fid_input_iscd": "000660"})
        self.assertEqual(r.json()["output2"]["stck_shrn_iscd"], "000660")
        self.assert_input_error(await self._book("999999"), "FID_INPUT_ISCD")
        self.assert_input_error(await self._book("005930", "X"), "FID_COND_MRKT_DIV_CODE")


# --- overseas price-detail -----------------------------------------------------------------------------


class PriceDetailTest(RestCase):
    async def _detail(self, excd: str, symb: str) -> httpx.Response:
        return await self.kis_get(T.OVERSEAS_PRICE_DETAIL_PATH, T.OVERSEAS_PRICE_DETAIL,
                                  {"AUTH": "", "EXCD": excd, "SYMB": symb})

    async def test_shape_and_consistency_with_price(self) -> None:
        r = await self._detail("NAS", "AAPL")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["tr_id"], T.OVERSEAS_PRICE_DETAIL)
        body = r.json()
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "MCA00000"))
        out = body["output"]
        self.assertEqual(len(F.OVERSEAS_PRICE_DETAIL_OUTPUT), 41)
        self.assertEqual(list(out), list(F.OVERSEAS_PRICE_DETAIL_OUTPUT))
        self.assertEqual((next(iter(out)), list(out)[-1]), ("rsym", "etyp_nm"))
        self.assertTrue(all(isinstance(v, str) for v in out.values()))
        price = (await self.kis_get(T.OVERSEAS_PRICE_PATH, T.OVERSEAS_PRICE,
                                    {"AUTH": "", "EXCD": "NAS", "SYMB": "AAPL"})).json()["output"]
        for name in ("rsym", "zdiv", "base", "last", "tvol", "tamt", "pvol"):
            self.assertEqual(out[name], price[name], name)
        self.assertEqual(out["rsym"], "DNASAAPL")
        self.assertRegex(out["last"], r"^\d+\.\d{4}$")
        self.assertEqual(out["curr"], "USD")
        self.assertEqual(out["e_ordyn"], "매매 가능")  # python-kis: halt = e_ordyn != "매매 가능"
        self.assertIn(out["t_xsgn"], SIGNS)
        self.assertEqual(out["t_xsgn"], price["sign"])
        for name in ("open", "high", "low", "h52p", "l52p", "t_rate", "p_rate", "perx", "epsx"):
            self.assertRegex(out[name], r"^\d+(\.\d+)?$", name)
        self.assertLessEqual(float(out["low"]), float(out["last"]))
        self.assertLessEqual(float(out["last"]), float(out["high"]))
        self.assertRegex(out["h52d"], r"^\d{8}$")
        self.assertEqual(int(out["t_xprc"]), round(float(out["last"]) * float(out["t_rate"])))

    async def test_day_session_code_and_bad_inputs(self) -> None:
        self.assertEqual((await self._detail("BAQ", "NVDA")).json()["output"]["rsym"], "DNASNVDA")
        self.assertEqual((await self._detail("NYS", "KO")).json()["output"]["rsym"], "DNYSKO")
        self.assert_input_error(await self._detail("NAS", "ZZZZ"), "SYMB")
        self.assert_input_error(await self._detail("NYS", "AAPL"), "EXCD")


# --- inquire-psbl-rvsecncl -----------------------------------------------------------------------------


class PsblRvsecnclTest(QuietRestCase):
    async def psbl(self, tr_cont: str = "", tr_id: str = "TTTC0084R", **params: str) -> httpx.Response:
        return await self.kis_get(T.INQUIRE_PSBL_RVSECNCL_PATH, tr_id, psbl_params(**params), tr_cont=tr_cont)

    async def rest_limit_buy(self, code: str, qty: int) -> tuple[str, int]:
        """A limit buy at the lower limit: it rests (the market is quiet)."""
        lower = (await self.admin("GET", f"/market/{code}"))["lower"]
        return await self.ok_order(await self.buy(code, qty, dvsn="00", price=lower)), lower

    async def test_empty_account(self) -> None:
        r = await self.psbl()
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["tr_id"], "TTTC0084R")
        self.assertEqual(r.headers["tr_cont"], "D")
        self.assert_wire_header_names(r)
        body = r.json()
        self.assertEqual(set(body), {"ctx_area_fk100", "ctx_area_nk100", "output", "rt_cd", "msg_cd", "msg1"})
        self.assertEqual((body["rt_cd"], body["msg_cd"], body["output"]), ("0", "KIOK0560", []))
        self.assert_padded(body["msg1"], "조회할 내용이 없습니다")
        self.assertRegex(body["ctx_area_fk100"], PADDED_CURSOR)
        self.assertEqual(body["ctx_area_fk100"].rstrip(), f"{CANO}^{PRDT}^")
        self.assertEqual(body["ctx_area_nk100"], " " * 100)

    async def test_open_orders_rows(self) -> None:
        odno1, lower = await self.rest_limit_buy("005930", 5)
        await self.ok_order(await self.buy("000660", 3))  # a small market order fills at once: not listed
        odno2, _ = await self.rest_limit_buy("000660", 4)
        await self.ok_order(await self.buy("136480", 20))
        upper = (await self.admin("GET", "/market/136480"))["upper"]
        sell = await self.ok_order(await self.sell("136480", 7, dvsn="00", price=upper))
        r = await self.psbl()
        body = r.json()
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "KIOK0510"), body)
        self.assert_padded(body["msg1"], "조회가 완료되었습니다")
        rows = body["output"]
        self.assertIsInstance(rows, list)
        self.assertEqual([row["odno"] for row in rows], sorted([odno1, odno2, sell], reverse=True))
        for row in rows:
            self.assertEqual(list(row), list(F.PSBL_RVSECNCL_OUTPUT))
            self.assertTrue(all(isinstance(v, str) for v in row.values()))
            self.assertRegex(row["odno"], r"^\d{10}$")
            self.assertRegex(row["ord_gno_brno"], r"^\d{5}$")
            self.assertRegex(row["ord_tmd"], r"^\d{6}$")
            self.assertEqual((row["orgn_odno"], row["rvse_cncl_dvsn_name"]), ("", ""))
            self.assertEqual((row["ord_dvsn_cd"], row["ord_dvsn_name"]), ("00", "지정가"))
            self.assertEqual((row["tot_ccld_qty"], row["tot_ccld_amt"]), ("0", "0"))
            self.assertEqual(row["psbl_qty"], row["ord_qty"])
        by_odno = {row["odno"]: row for row in rows}
        first = by_odno[odno1]
        self.assertEqual((first["pdno"], first["prdt_name"], first["ord_qty"], first["ord_unpr"]),
                         ("005930", "삼성전자", "5", str(lower)))
        self.assertEqual(first["sll_buy_dvsn_cd"], "02")
        self.assertEqual((by_odno[sell]["sll_buy_dvsn_cd"], by_odno[sell]["ord_unpr"]), ("01", str(upper)))
        sells = (await self.psbl(inqr_dvsn_2="1")).json()["output"]
        self.assertEqual([row["odno"] for row in sells], [sell])
        buys = (await self.psbl(inqr_dvsn_2="2")).json()["output"]
        self.assertEqual({row["odno"] for row in buys}, {odno1, odno2})
        by_symbol = (await self.psbl(inqr_dvsn_1="1")).json()["output"]
        self.assertEqual([row["pdno"] for row in by_symbol], ["000660", "005930", "136480"])

    async def test_partial_fill_modify_and_cancel(self) -> None:
        odno, lower = await self.rest_limit_buy("005930", 10)
        self.sim.exchange.fill_liquidity = 3
        state = await self.set_market_price("005930", lower)  # one trade at the limit fills 3 of 10
        await self.wait_filled(odno, 3)
        await self.set_market_price("005930", state["base"])  # back up: nothing crosses any more
        row = (await self.psbl()).json()["output"][0]
        self.assertEqual((row["odno"], row["ord_qty"], row["tot_ccld_qty"], row["psbl_qty"]), (odno, "10", "3", "7"))
        self.assertEqual(row["tot_ccld_amt"], str(3 * lower))
        # Modify 2 of the 7 to a new price: the original keeps 5, the modifying order lists its own 2.
        new_price = lower + tick_size(lower)
        answer = await self.revise(odno, "01", qty=2, price=new_price, qty_all="N")
        new_odno = await self.ok_order(answer)
        rows = {r["odno"]: r for r in (await self.psbl()).json()["output"]}
        self.assertEqual(rows[odno]["psbl_qty"], "5")
        modified = rows[new_odno]
        self.assertEqual((modified["orgn_odno"], modified["ord_qty"], modified["psbl_qty"]), (odno, "2", "2"))
        self.assertEqual(modified["ord_unpr"], str(new_price))
        self.assertEqual(modified["rvse_cncl_dvsn_name"], "BUY AMEND*")
        # Cancel the rest of both: nothing is left to modify.
        await self.ok_order(await self.revise(odno, "02"))
        await self.ok_order(await self.revise(new_odno, "02"))
        body = (await self.psbl()).json()
        self.assertEqual((body["output"], body["msg_cd"]), ([], "KIOK0560"))

    async def test_paging_fifty_per_page(self) -> None:
        placed = {(await self.rest_limit_buy("005930", 1))[0] for _ in range(55)}
        r1 = await self.psbl()
        self.assertEqual(r1.headers["tr_cont"], "F")
        b1 = r1.json()
        self.assertEqual(len(b1["output"]), 50)
        self.assertEqual(b1["msg_cd"], "KIOK0490")
        self.assertRegex(b1["ctx_area_nk100"], PADDED_CURSOR)
        self.assertTrue(b1["ctx_area_nk100"].strip())
        r2 = await self.psbl(tr_cont="N", CTX_AREA_FK100=b1["ctx_area_fk100"], CTX_AREA_NK100=b1["ctx_area_nk100"])
        self.assertEqual(r2.headers["tr_cont"], "E")
        b2 = r2.json()
        self.assertEqual(len(b2["output"]), 5)
        self.assertEqual(b2["msg_cd"], "KIOK0510")
        self.assertEqual(b2["ctx_area_nk100"].strip(), "")
        self.assertEqual({row["odno"] for row in b1["output"] + b2["output"]}, placed)

    async def test_old_tr_id_and_other_accounts(self) -> None:
        odno, _ = await self.rest_limit_buy("005930", 1)
        r = await self.psbl(tr_id="TTTC8036R")
        self.assertEqual(r.headers["tr_id"], "TTTC8036R")
        self.assertEqual([row["odno"] for row in r.json()["output"]], [odno])
        other = await self.psbl(CANO="87654321")
        self.assertEqual(other.json()["output"], [])

    async def test_bad_inputs(self) -> None:
        self.assert_input_error(await self.psbl(inqr_dvsn_1="2"), "INQR_DVSN_1")
        self.assert_input_error(await self.psbl(inqr_dvsn_2="3"), "INQR_DVSN_2")
        r = await self.kis_get(T.INQUIRE_PSBL_RVSECNCL_PATH, "TTTC0084R", {"CANO": CANO, "ACNT_PRDT_CD": PRDT,
                                                                          "INQR_DVSN_1": "0"})
        self.assert_input_error(r, "INQR_DVSN_2")
        body = self.assert_envelope(await self.psbl(CANO="1234"), 200, "7", "APAC0081")
        self.assertEqual(len(body["msg1"]), MSG1_WIDTH)
        # Paper TR id on the live host: unknown.
        self.assert_envelope(await self.psbl(tr_id="VTTC0084R"), 500, "1", "OPSQ0002")


class PaperLiveOnlyTest(RestCase):
    """The paper host has no 정정취소가능주문조회, product lookups or price detail (모의투자 미지원)."""

    paper = True

    async def test_live_only_trs_get_egw00213(self) -> None:
        cases = [(T.INQUIRE_PSBL_RVSECNCL_PATH, "TTTC0084R", psbl_params()),
                 (T.INQUIRE_PSBL_RVSECNCL_PATH, "TTTC8036R", psbl_params()),
                 (T.SEARCH_INFO_PATH, T.SEARCH_INFO, {"PDNO": "005930", "PRDT_TYPE_CD": "300"}),
                 (T.SEARCH_STOCK_INFO_PATH, T.SEARCH_STOCK_INFO, {"PDNO": "005930", "PRDT_TYPE_CD": "300"}),
                 (T.OVERSEAS_PRICE_DETAIL_PATH, T.OVERSEAS_PRICE_DETAIL, {"AUTH": "", "EXCD": "NAS", "SYMB": "AAPL"})]
        for path, tr_id, params in cases:
            with self.subTest(tr_id=tr_id):
                r = await self.kis_get(path, tr_id, params)
                self.assert_envelope(r, 500, "1", "EGW00213", "모의투자 TR 이 아닙니다.")
        r = await self.kis_get(T.INQUIRE_PSBL_RVSECNCL_PATH, "VTTC0084R", psbl_params())
        self.assert_envelope(r, 500, "1", "OPSQ0002")

    async def test_asking_price_is_served_on_paper(self) -> None:
        r = await self.kis_get(T.ASKING_PRICE_PATH, T.ASKING_PRICE,
                               {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"})
        self.assertEqual(r.json()["rt_cd"], "0", r.text)
        self.assertEqual(list(r.json()["output1"]), list(F.ASKING_PRICE_OUTPUT1))


# --- repeated slashes ----------------------------------------------------------------------------------


class RepeatedSlashTest(RestCase):
    async def test_double_slash_paths_route(self) -> None:
        base = self.server.rest_url
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
        for path in ("//uapi/domestic-stock/v1/quotations/inquire-price",
                     "/uapi//domestic-stock///v1/quotations//inquire-price"):
            with self.subTest(path=path):
                request = self.http.build_request("GET", base + path, params=params,
                                                  headers=await self.headers(T.INQUIRE_PRICE))
                self.assertIn(b"//", request.url.raw_path)  # sent as is
                r = await self.http.send(request)
                self.assertEqual(r.status_code, 200, r.text)
                self.assertEqual(r.json()["output"]["stck_shrn_iscd"], "005930")
        # mojito2's order-cash and inquire-psbl-order calls, and an OAuth path.
        r = await self.http.post(base + "//" + T.ORDER_CASH_PATH.lstrip("/"), json=order_body("005930", 1),
                                 headers=await self.headers("TTTC0802U"))
        await self.ok_order(r)
        r = await self.http.post(base + "//oauth2/Approval", json={
            "grant_type": "client_credentials", "appkey": "PSk" + "y" * 33, "secretkey": APP_SECRET})
        self.assertEqual(len(r.json()["approval_key"]), 36)

    async def test_unknown_paths_stay_unroutable(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        for path in ("//uapi/domestic-stock/v1/quotations/no-such-api", "//uapi/domestic-stock/v1/quotations/"
                     "inquire-price/"):
            with self.subTest(path=path):
                r = await self.http.get(self.server.rest_url + path, headers=headers)
                self.assert_envelope(r, 404, "1", "EGW00202", "GW 라우팅 오류")


# --- execution notices for every app key of the account ------------------------------------------------

HTS_ID = "HTSUSER1"
ORDER_CASH = T.ORDER_CASH_PATH
APP_KEY_B = "PSb" + "b" * 33
APP_KEY_C = "PSc" + "c" * 33


class NoticeEveryAppKeyTest(RestCase, WsTestCase):
    """KIS sends notices per account/HTS ID: an app key that subscribes after another app key opened the
    account gets the notices of its own orders (and of the other's), as long as it uses the account."""

    async def app_headers(self, app_key: str, tr_id: str) -> dict[str, str]:
        tokens: dict[str, str] = self.__dict__.setdefault("_app_tokens", {})
        if app_key not in tokens:  # one issuance per app key: a second within a minute is EGW00133
            tokens[app_key] = await self.token(app_key)
        token = tokens[app_key]
        return {"authorization": f"Bearer {token}", "appkey": app_key, "appsecret": APP_SECRET, "tr_id": tr_id,
                "custtype": "P"}

    async def notice_session(self, app_key: str) -> tuple[Any, str, str]:
        approval = await self.approval_key(app_key)
        ws = await self.ws_connect().__aenter__()
        self.addAsyncCleanup(ws.close)
        ack = await self.subscribe(ws, approval, "H0STCNI0", HTS_ID)
        self.assertEqual(ack["body"]["msg_cd"], "OPSP0000", ack)
        return ws, ack["body"]["output"]["key"], ack["body"]["output"]["iv"]

    async def next_ack(self, ws: Any, key: str, iv: str) -> list[str]:
        frame = await recv_data(ws, "H0STCNI0")
        fields = aes_decrypt(frame.payload, key, iv).split("^")
        self.assertEqual(len(fields), N_H0STCNI0)
        return fields

    async def resting_buy(self, app_key: str) -> str:
        lower = (await self.admin("GET", "/market/005930"))["lower"]
        r = await self.http.post(ORDER_CASH, json=order_body("005930", 2, dvsn="00", price=lower),
                                 headers=await self.app_headers(app_key, "TTTC0012U"))
        return await self.ok_order(r)

    async def test_second_app_key_gets_notices_for_its_orders(self) -> None:
        # App key A opens the account (any account TR does), then B joins with its own order.
        self.assertEqual((await self.balance()).json()["rt_cd"], "0")
        ws_a, key_a, iv_a = await self.notice_session(APP_KEY)
        ws_b, key_b, iv_b = await self.notice_session(APP_KEY_B)
        odno_b = await self.resting_buy(APP_KEY_B)
        ack_b = await self.next_ack(ws_b, key_b, iv_b)
        self.assertEqual((ack_b[0], ack_b[1], ack_b[2], ack_b[13]), (HTS_ID, CANO + PRDT, odno_b, "1"))
        ack_a = await self.next_ack(ws_a, key_a, iv_a)
        self.assertEqual(ack_a[2], odno_b, "the account's first app key hears the other's order too")
        # And A's own order reaches B.
        odno_a = await self.resting_buy(APP_KEY)
        self.assertEqual((await self.next_ack(ws_a, key_a, iv_a))[2], odno_a)
        self.assertEqual((await self.next_ack(ws_b, key_b, iv_b))[2], odno_a)
        # A cancel by B (a modify/cancel record) reaches both as well.
        r = await self.http.post(T.ORDER_RVSECNCL_PATH, json=rvsecncl_body(odno_a, "02"),
                                 headers=await self.app_headers(APP_KEY_B, "TTTC0013U"))
        cancel_no = await self.ok_order(r)
        for ws, key, iv in ((ws_a, key_a, iv_a), (ws_b, key_b, iv_b)):
            cancel = await self.next_ack(ws, key, iv)
            self.assertEqual((cancel[2], cancel[3], cancel[5]), (cancel_no, odno_a, "2"))

    async def test_app_key_that_never_used_the_account_gets_nothing(self) -> None:
        ws_c, _, _ = await self.notice_session(APP_KEY_C)
        await self.subscribe_ok(ws_c, await self.approval_key(APP_KEY_C), "H0STCNT0", "005930")
        await self.resting_buy(APP_KEY)
        # A notice is queued with the order, ahead of the quote frames of the following market steps.
        for _ in range(5):
            frame = await recv_data(ws_c)
            self.assertEqual((frame.enc, frame.tr_id), ("0", "H0STCNT0"))


if __name__ == "__main__":
    unittest.main()
