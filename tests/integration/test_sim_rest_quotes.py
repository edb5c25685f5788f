"""Simulator REST conformance: quotations — inquire-price, overseas price, chk-holiday (reference §3.2, §4.2,
§4.9, §4.10)."""

from __future__ import annotations

import re
import unittest

import httpx

from kis.broker import fields as F
from kis.broker import trids as T
from kis.krx import tick_size
from kis.sim.symbols import KRX_SYMBOLS

from .sim_rest_support import JSON_TYPE, RestCase

NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
SIGNS = {"1", "2", "3", "4", "5"}


class InquirePriceTest(RestCase):
    async def _get(self, params: dict[str, str]) -> tuple[int, dict[str, object], dict[str, str]]:
        r = await self.kis_get(T.INQUIRE_PRICE_PATH, T.INQUIRE_PRICE, params)
        return r.status_code, r.json(), dict(r.headers)

    async def test_success_envelope_and_headers(self) -> None:
        r = await self.kis_get(T.INQUIRE_PRICE_PATH, T.INQUIRE_PRICE,
                               {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers["content-type"], JSON_TYPE)
        self.assertEqual(r.headers["tr_id"], T.INQUIRE_PRICE)
        # tr_id/tr_cont/gt_uid lowercase on the wire, Content-Type capitalised (official APIResp).
        self.assert_wire_header_names(r)
        self.assertEqual(r.headers["tr_cont"], "")  # not a paginated TR
        body = r.json()
        self.assertEqual(set(body), {"output", "rt_cd", "msg_cd", "msg1"})
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "MCA00000"))
        self.assertEqual(body["msg1"], "정상처리 되었습니다.")  # quote TRs do not pad msg1
        self.assertIsInstance(body["output"], dict)

    async def test_output_has_all_documented_fields_in_order(self) -> None:
        out = await self.quote("000660")
        self.assertEqual(len(F.INQUIRE_PRICE_OUTPUT), 82)
        self.assertEqual(list(out), list(F.INQUIRE_PRICE_OUTPUT))
        self.assertEqual(next(iter(out)), "iscd_stat_cls_code")
        self.assertEqual(list(out)[11:15], ["stck_prpr", "prdy_vrss", "prdy_vrss_sign", "prdy_ctrt"])
        self.assertEqual(list(out)[-1], "mang_issu_cls_code")
        for key, value in out.items():
            self.assertEqual(key, key.lower())
            self.assertIsInstance(value, str, key)
        self.assertEqual(out["stck_shrn_iscd"], "000660")
        # DOC example for 000660: base 128 500 → limits 167 000 / 90 000, tick 500.
        limits = (out["stck_sdpr"], out["stck_mxpr"], out["stck_llam"])
        self.assertEqual(limits, ("128500", "167000", "90000"))
        self.assertEqual(out["rprs_mrkt_kor_name"], "KOSPI200")

    async def test_prices_on_tick_grid_within_daily_limits(self) -> None:
        for sym in KRX_SYMBOLS:
            with self.subTest(code=sym.code):
                out = await self.quote(sym.code)
                prpr, sdpr = int(out["stck_prpr"]), int(out["stck_sdpr"])
                mxpr, llam = int(out["stck_mxpr"]), int(out["stck_llam"])
                self.assertEqual(sdpr, sym.base_price)
                # ±30 % of the base, rounded inwards onto the tick grid.
                self.assertLessEqual(mxpr, sdpr * 1.3)
                self.assertGreater(mxpr + tick_size(mxpr), sdpr * 1.3)
                self.assertGreaterEqual(llam, sdpr * 0.7)
                self.assertLess(llam - tick_size(llam - 1), sdpr * 0.7)
                for name in ("stck_prpr", "stck_oprc", "stck_hgpr", "stck_lwpr", "stck_mxpr", "stck_llam"):
                    price = int(out[name])
                    self.assertEqual(price % tick_size(price), 0, (name, price))
                    self.assertTrue(llam <= price <= mxpr, (name, price))
                self.assertTrue(int(out["stck_lwpr"]) <= prpr <= int(out["stck_hgpr"]))
                self.assertEqual(int(out["prdy_vrss"]), prpr - sdpr)
                self.assertEqual(out["prdy_ctrt"], f"{(prpr - sdpr) / sdpr * 100:.2f}")
                self.assertIn(out["prdy_vrss_sign"], SIGNS)
                expected_sign = "2" if prpr > sdpr else "5" if prpr < sdpr else "3"
                if llam < prpr < mxpr:
                    self.assertEqual(out["prdy_vrss_sign"], expected_sign)
                self.assertEqual(out["aspr_unit"], str(tick_size(prpr)))
                for name in ("acml_vol", "acml_tr_pbmn", "lstn_stcn", "per", "pbr", "wghn_avrg_stck_prc"):
                    self.assertRegex(out[name], NUMERIC, name)

    async def test_quote_follows_admin_price(self) -> None:
        await self.set_market_price("005930", 75000)
        out = await self.quote("005930")
        # An unwatched symbol moves at most one trade (±2 ticks) per query.
        self.assertLessEqual(abs(int(out["stck_prpr"]) - 75000), 200)
        self.assertEqual(out["prdy_vrss_sign"], "2")

    async def test_upper_limit_sign(self) -> None:
        state = await self.set_market_price("136480", 10_000)  # clamped to the upper limit
        self.assertEqual(state["price"], state["upper"])
        # Keep it there: the next query may trade one more step, but never above the limit.
        out = await self.quote("136480")
        if out["stck_prpr"] == out["stck_mxpr"]:
            self.assertEqual(out["prdy_vrss_sign"], "1")
        self.assertLessEqual(int(out["stck_prpr"]), int(out["stck_mxpr"]))

    async def test_query_names_are_case_insensitive(self) -> None:
        for params in ({"fid_cond_mrkt_div_code": "J", "fid_input_iscd": "005930"},
                       {"Fid_Cond_Mrkt_Div_Code": "J", "FID_input_ISCD": "005930"}):
            with self.subTest(params=params):
                status, body, _ = await self._get(params)
                self.assertEqual(status, 200)
                self.assertEqual(body["rt_cd"], "0", body)
                self.assertEqual(body["output"]["stck_shrn_iscd"], "005930")  # type: ignore[index]

    async def test_market_codes(self) -> None:
        for market in ("J", "NX", "UN", "j"):
            with self.subTest(market=market):
                _, body, _ = await self._get({"FID_COND_MRKT_DIV_CODE": market, "FID_INPUT_ISCD": "005930"})
                self.assertEqual(body["rt_cd"], "0", body)

    async def test_bad_inputs_give_opsq2001(self) -> None:
        cases = [
            ({"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "999999"}, "FID_INPUT_ISCD"),
            ({"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": ""}, "FID_INPUT_ISCD"),
            ({"FID_COND_MRKT_DIV_CODE": "J"}, "FID_INPUT_ISCD"),
            ({"FID_COND_MRKT_DIV_CODE": "X", "FID_INPUT_ISCD": "005930"}, "FID_COND_MRKT_DIV_CODE"),
            ({"FID_INPUT_ISCD": "005930"}, "FID_COND_MRKT_DIV_CODE"),
        ]
        for params, field in cases:
            with self.subTest(params=params):
                r = await self.kis_get(T.INQUIRE_PRICE_PATH, T.INQUIRE_PRICE, params)
                self.assert_input_error(r, field)
                self.assertEqual(r.headers["tr_id"], T.INQUIRE_PRICE)
        self.assertEqual((await self.stats())["rest_errors"].get("OPSQ2001"), len(cases))


class PaperQuoteTest(RestCase):
    paper = True

    async def test_quotation_tr_is_the_same_on_the_paper_host(self) -> None:
        out = await self.quote("005930")
        self.assertEqual(list(out), list(F.INQUIRE_PRICE_OUTPUT))
        r = await self.kis_get(T.INQUIRE_PRICE_PATH, "VHKST01010100",
                               {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"})
        self.assert_envelope(r, 500, "1", "OPSQ0002")

    async def test_chk_holiday_is_live_only(self) -> None:
        r = await self.kis_get(T.CHK_HOLIDAY_PATH, T.CHK_HOLIDAY, {"BASS_DT": "20261220"})
        self.assert_envelope(r, 500, "1", "EGW00213")
        r = await self.kis_get(T.CHK_HOLIDAY_PATH, "VTCA0903R", {"BASS_DT": "20261220"})
        self.assert_envelope(r, 500, "1", "OPSQ0002")


class OverseasPriceTest(RestCase):
    async def _price(self, excd: str, symb: str) -> httpx.Response:
        params = {"AUTH": "", "EXCD": excd, "SYMB": symb}
        return await self.kis_get(T.OVERSEAS_PRICE_PATH, T.OVERSEAS_PRICE, params)

    async def test_aapl_output(self) -> None:
        r = await self._price("NAS", "AAPL")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["tr_id"], T.OVERSEAS_PRICE)
        body = r.json()
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "MCA00000"))
        out = body["output"]
        self.assertIsInstance(out, dict)
        self.assertEqual(list(out), list(F.OVERSEAS_PRICE_OUTPUT))
        self.assertTrue(all(isinstance(v, str) for v in out.values()))
        self.assertEqual(out["rsym"], "DNASAAPL")
        self.assertEqual(out["zdiv"], "4")
        self.assertEqual(out["base"], "169.7850")
        self.assertRegex(out["last"], r"^\d+\.\d{4}$")
        self.assertRegex(out["diff"], r"^\d+\.\d{4}$")
        self.assertIn(out["sign"], SIGNS)
        last, base = float(out["last"]), float(out["base"])
        self.assertAlmostEqual(abs(last - base), float(out["diff"]), places=4)

    async def test_lowercase_query_and_day_session_code(self) -> None:
        for excd in ("nas", "BAQ"):
            with self.subTest(excd=excd):
                r = await self.kis_get(T.OVERSEAS_PRICE_PATH, T.OVERSEAS_PRICE,
                                       {"auth": "", "excd": excd, "symb": "aapl"})
                self.assertEqual(r.json()["rt_cd"], "0", r.text)
                self.assertEqual(r.json()["output"]["rsym"], "DNASAAPL")

    async def test_bad_symbol_or_exchange(self) -> None:
        r = await self._price("NAS", "ZZZZ")
        self.assert_input_error(r, "SYMB")
        r = await self._price("NYS", "AAPL")
        self.assert_input_error(r, "EXCD")


class ChkHolidayTest(RestCase):
    async def test_weekend_weekday_and_holiday(self) -> None:
        r = await self.kis_get(T.CHK_HOLIDAY_PATH, T.CHK_HOLIDAY,
                               {"BASS_DT": "20261220", "CTX_AREA_FK": "", "CTX_AREA_NK": ""})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn(r.headers["tr_cont"], ("D", "E", "F", "M"))
        body = r.json()
        self.assertEqual(body["rt_cd"], "0")
        rows = body["output"]
        self.assertIsInstance(rows, list)
        self.assertGreaterEqual(len(rows), 7)
        for row in rows:
            self.assertEqual(list(row), list(F.HOLIDAY_OUTPUT))
        by_day = {row["bass_dt"]: row for row in rows}
        self.assertEqual(rows[0]["bass_dt"], "20261220")
        sunday, monday, christmas = by_day["20261220"], by_day["20261221"], by_day["20261225"]
        self.assertEqual((sunday["wday_dvsn_cd"], sunday["opnd_yn"], sunday["bzdy_yn"]), ("01", "N", "N"))
        self.assertEqual((monday["wday_dvsn_cd"], monday["opnd_yn"]), ("02", "Y"))
        self.assertEqual((christmas["wday_dvsn_cd"], christmas["opnd_yn"]), ("06", "N"))
        self.assertEqual(by_day["20261226"]["wday_dvsn_cd"], "07")

    async def test_bad_date(self) -> None:
        r = await self.kis_get(T.CHK_HOLIDAY_PATH, T.CHK_HOLIDAY, {"BASS_DT": "2026-12-20"})
        self.assert_input_error(r, "BASS_DT")


if __name__ == "__main__":
    unittest.main()
