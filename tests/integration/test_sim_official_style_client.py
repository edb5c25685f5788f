"""A client written the way the official KIS sample (open-trading-api ``examples_user/kis_auth.py``)
is written, run end to end against the simulator: token -> quote -> balance with tr_cont paging ->
market buy -> fill visible in balance and daily orders -> WebSocket ticks, PINGPONG answered with a
pong frame, and a decrypted execution notice.

The client below copies the sample's idioms, not the simulator's code (reference §2-§6):

* REST headers ``Content-Type/Accept/charset/User-Agent`` + ``authorization/appkey/appsecret/tr_id/custtype/
  tr_cont``; a live TR id starting T/J/C becomes ``V`` + rest on the paper host (``_url_fetch``).
* ``APIResp._setHeader`` keeps the response headers whose *name* ``islower()`` and turns them into a
  ``namedtuple`` - so every lowercase header name must be a Python identifier (``tr_cont`` yes,
  ``content-type`` no); the body becomes a ``namedtuple`` too.
* ``inquire_balance``/``inquire_daily_ccld`` recurse while header ``tr_cont`` is ``M`` or ``F``, sending
  ``tr_cont: N`` and the ``ctx_area_fk100``/``ctx_area_nk100`` of the previous answer verbatim.
* ``websockets.connect(url + "/tryitout", ping_interval=None)``; control frames go through ``system_resp``
  (``header.tr_key`` and ``header.encrypt`` read on every non-PINGPONG frame); PINGPONG is answered with
  ``await ws.pong(raw)``; a data frame is AES-256-CBC decrypted with the ACK's ``key``/``iv`` only when that
  ACK's ``header.encrypt == "Y"``.

Only httpx, websockets and cryptography are used. Every wait has a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import unittest
from collections import namedtuple
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import websockets
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kis.sim.engine import SimConfig
from kis_testing import APP_KEY, APP_SECRET, SimTestCase, wait_until

KST = ZoneInfo("Asia/Seoul")
HTS_ID = "officialuser"
TIMEOUT = 5.0

PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
ORDER_CASH = "/uapi/domestic-stock/v1/trading/order-cash"
BALANCE = "/uapi/domestic-stock/v1/trading/inquire-balance"
DAILY_CCLD = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
PSBL_RVSECNCL = "/uapi/domestic-stock/v1/trading/inquire-psbl-rvsecncl"
ASKING_PRICE = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"
SEARCH_INFO = "/uapi/domestic-stock/v1/quotations/search-info"

N_H0STCNT0, N_H0STASP0, N_H0STCNI0 = 46, 59, 26
# H0STCNI0/9 positions (26-field layout, reference §6.4.3).
ODER_NO, CNTG_QTY, CNTG_UNPR, CNTG_YN = 2, 9, 10, 13


class OfficialStyleClient:
    """The REST half of ``kis_auth.py``: ``auth()``, ``_url_fetch()`` and ``APIResp``, over httpx."""

    def __init__(
        self, http: httpx.AsyncClient, paper: bool, app_key: str = APP_KEY, app_secret: str = APP_SECRET
    ) -> None:
        self.http = http
        self.paper = paper
        self.app_key = app_key
        self.app_secret = app_secret
        self.base_headers = {
            "Content-Type": "application/json",
            "Accept": "text/plain",
            "charset": "UTF-8",
            "User-Agent": "official-style-test",
        }

    async def auth(self) -> Any:
        body = {"grant_type": "client_credentials", "appkey": self.app_key, "appsecret": self.app_secret}
        res = await self.http.post("/oauth2/tokenP", content=json.dumps(body), headers=self.base_headers)
        assert res.status_code == 200, res.text
        tok = namedtuple("res", res.json().keys())(**res.json())  # _getResultObject
        self.base_headers["authorization"] = f"Bearer {tok.access_token}"
        self.base_headers["appkey"] = self.app_key
        self.base_headers["appsecret"] = self.app_secret
        return tok

    async def approval_key(self) -> str:
        body = {"grant_type": "client_credentials", "appkey": self.app_key, "secretkey": self.app_secret}
        res = await self.http.post("/oauth2/Approval", content=json.dumps(body), headers=self.base_headers)
        assert res.status_code == 200, res.text
        return str(res.json()["approval_key"])

    async def url_fetch(
        self, api_url: str, ptr_id: str, tr_cont: str, params: dict[str, str], post: bool = False
    ) -> APIResp:
        headers = dict(self.base_headers)
        tr_id = ptr_id
        if ptr_id[0] in ("T", "J", "C") and self.paper:
            tr_id = "V" + ptr_id[1:]
        headers["tr_id"] = tr_id
        headers["custtype"] = "P"
        headers["tr_cont"] = tr_cont
        if post:
            res = await self.http.post(api_url, headers=headers, content=json.dumps(params))
        else:
            res = await self.http.get(api_url, headers=headers, params=params)
        assert res.status_code == 200, f"{api_url} {tr_id}: HTTP {res.status_code} {res.text}"
        return APIResp(res)


def lowercase_headers(res: httpx.Response) -> dict[str, str]:
    """The headers ``APIResp._setHeader`` keeps: names as sent on the wire that are all lowercase.

    (requests' ``res.headers.keys()`` yields the names as received; httpx exposes them via ``.raw``.)
    """
    return {
        k.decode("latin-1"): v.decode("latin-1") for k, v in res.headers.raw if k.decode("latin-1").islower()
    }


class APIResp:
    """``kis_auth.APIResp``, except that ``_setHeader`` skips names that are no identifiers.

    The strict original is exercised by ``test_official_apiresp_header_namedtuple`` below.
    """

    def __init__(self, res: httpx.Response) -> None:
        self.res = res
        fld = {k: v for k, v in lowercase_headers(res).items() if k.isidentifier()}
        self.header = namedtuple("header", fld.keys())(**fld)
        self.body = namedtuple("body", res.json().keys())(**res.json())

    def is_ok(self) -> bool:
        return bool(self.body.rt_cd == "0")


def aes_cbc_base64_dec(key: str, iv: str, cipher_text: str) -> str:
    dec = Cipher(algorithms.AES(key.encode("utf-8")), modes.CBC(iv.encode("utf-8"))).decryptor()
    data = dec.update(base64.b64decode(cipher_text)) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode("utf-8")


class OfficialStyleFlow(SimTestCase):
    """The whole flow; subclasses choose the host (live or paper)."""

    paper = False
    cano = "50505050"
    prdt = "01"

    def sim_config(self) -> SimConfig:
        # A generous rate limit so the flow need not pace itself; fast PINGPONGs so one arrives in the test.
        return SimConfig(
            paper=self.paper,
            rate_limit_per_s=1000,
            token_min_interval_s=60.0,
            tick_interval_s=0.02,
            pingpong_interval_s=0.2,
        )

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.client = OfficialStyleClient(self.http, self.paper)

    # --- REST steps ------------------------------------------------------------------------------------

    async def step_token(self) -> None:
        tok = await self.client.auth()
        self.assertEqual(tok.token_type, "Bearer")
        self.assertIsInstance(tok.expires_in, int)
        # save_token(): strptime with exactly this format; the expiry is ~24 h ahead in KST.
        valid = datetime.strptime(tok.access_token_token_expired, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
        ahead = valid - self.sim.clock.now().astimezone(KST)
        self.assertGreater(ahead, timedelta(hours=23, minutes=58))
        self.assertLessEqual(ahead, timedelta(hours=24, seconds=1))

    async def step_quote(self) -> int:
        r = await self.client.url_fetch(
            PRICE, "FHKST01010100", "", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
        )
        self.assertTrue(r.is_ok(), r.body)
        self.assertIsInstance(r.body.output, dict)
        self.assertTrue(r.body.output["stck_prpr"].isdigit())
        self.assertEqual(r.header.tr_id, "FHKST01010100")
        self.assertIn(r.header.tr_cont, ("", "D", "E"))  # not a paginated TR
        return int(r.body.output["stck_prpr"])

    async def buy_market(self, code: str, qty: int) -> dict[str, str]:
        r = await self.client.url_fetch(
            ORDER_CASH,
            "TTTC0012U",
            "",
            {
                "CANO": self.cano,
                "ACNT_PRDT_CD": self.prdt,
                "PDNO": code,
                "ORD_DVSN": "01",
                "ORD_QTY": str(qty),
                "ORD_UNPR": "0",
                "EXCG_ID_DVSN_CD": "KRX",
                "SLL_TYPE": "",
                "CNDT_PRIC": "",
            },
            post=True,
        )
        self.assertTrue(r.is_ok(), r.body)
        out = r.body.output
        self.assertRegex(out["KRX_FWDG_ORD_ORGNO"], r"^\d{5}$")
        self.assertRegex(out["ODNO"], r"^\d{10}$")
        self.assertRegex(out["ORD_TMD"], r"^\d{6}$")
        return dict(out)

    async def inquire_balance(self) -> tuple[list[dict[str, str]], list[dict[str, str]], list[str]]:
        """examples_llm ``inquire_balance``: recurse while the header tr_cont is M or F."""
        rows: list[dict[str, str]] = []
        summary: list[dict[str, str]] = []
        conts: list[str] = []
        tr_cont, fk, nk = "", "", ""
        for _ in range(10):  # max_depth
            r = await self.client.url_fetch(
                BALANCE,
                "TTTC8434R",
                tr_cont,
                {
                    "CANO": self.cano,
                    "ACNT_PRDT_CD": self.prdt,
                    "AFHR_FLPR_YN": "N",
                    "OFL_YN": "",
                    "INQR_DVSN": "01",
                    "UNPR_DVSN": "01",
                    "FUND_STTL_ICLD_YN": "N",
                    "FNCG_AMT_AUTO_RDPT_YN": "N",
                    "PRCS_DVSN": "00",
                    "CTX_AREA_FK100": fk,
                    "CTX_AREA_NK100": nk,
                },
            )
            self.assertTrue(r.is_ok(), r.body)
            self.assertIsInstance(r.body.output1, list)
            self.assertIsInstance(r.body.output2, list)  # output2 is an array with one object
            rows += r.body.output1
            summary += r.body.output2
            conts.append(r.header.tr_cont)
            tr_cont, fk, nk = r.header.tr_cont, r.body.ctx_area_fk100, r.body.ctx_area_nk100
            if tr_cont not in ("M", "F"):
                break
            tr_cont = "N"
        return rows, summary, conts

    async def inquire_daily_ccld(self) -> tuple[list[dict[str, str]], list[str]]:
        today = self.sim.clock.now().astimezone(KST).strftime("%Y%m%d")
        rows: list[dict[str, str]] = []
        conts: list[str] = []
        tr_cont, fk, nk = "", "", ""
        for _ in range(10):
            r = await self.client.url_fetch(
                DAILY_CCLD,
                "TTTC0081R",
                tr_cont,
                {
                    "CANO": self.cano,
                    "ACNT_PRDT_CD": self.prdt,
                    "INQR_STRT_DT": today,
                    "INQR_END_DT": today,
                    "SLL_BUY_DVSN_CD": "00",
                    "INQR_DVSN": "00",
                    "PDNO": "",
                    "CCLD_DVSN": "00",
                    "ORD_GNO_BRNO": "",
                    "ODNO": "",
                    "INQR_DVSN_3": "00",
                    "INQR_DVSN_1": "",
                    "EXCG_ID_DVSN_CD": "KRX",
                    "CTX_AREA_FK100": fk,
                    "CTX_AREA_NK100": nk,
                },
            )
            self.assertTrue(r.is_ok(), r.body)
            self.assertIsInstance(r.body.output1, list)
            self.assertIsInstance(r.body.output2, dict)  # daily-ccld output2 is an object
            rows += r.body.output1
            conts.append(r.header.tr_cont)
            tr_cont, fk, nk = r.header.tr_cont, r.body.ctx_area_fk100, r.body.ctx_area_nk100
            if tr_cont not in ("M", "F"):
                break
            tr_cont = "N"
        return rows, conts

    # --- the flow ----------------------------------------------------------------------------------------

    async def test_official_style_flow(self) -> None:
        await self.step_token()
        await self.step_quote()

        # Enough distinct positions to need a second balance page (20 a page on paper, 50 live).
        page = 20 if self.paper else 50
        wanted = page + 2 if self.paper else 3
        codes = sorted(self.sim.market.krx)[:wanted]
        if len(codes) < wanted:
            self.skipTest(f"the simulator lists only {len(codes)} KRX symbols")
        odnos = {code: (await self.buy_market(code, 1))["ODNO"] for code in codes}

        async def all_filled() -> bool:
            rows, _, _ = await self.inquire_balance()
            held = {row["pdno"]: int(row["hldg_qty"]) for row in rows}
            return all(held.get(code, 0) >= 1 for code in codes)

        await wait_until(all_filled, timeout=TIMEOUT, message="market buys visible in inquire-balance")
        rows, summary, conts = await self.inquire_balance()
        self.assertEqual(sorted(row["pdno"] for row in rows), codes)  # every position exactly once
        self.assertEqual(len(summary), len(conts))
        self.assertLess(int(summary[-1]["dnca_tot_amt"]), self.sim.config.starting_cash)
        if self.paper:
            self.assertEqual(len(conts), 2, conts)
            self.assertIn(conts[0], ("F", "M"))
            self.assertIn(conts[-1], ("D", "E"))
        else:
            self.assertEqual(conts, ["D"])

        orders, dconts = await self.inquire_daily_ccld()
        self.assertEqual(sorted(o["odno"] for o in orders), sorted(odnos.values()))
        for o in orders:
            self.assertEqual(o["tot_ccld_qty"], o["ord_qty"], o)
            self.assertGreater(int(o["avg_prvs"]), 0, o)
        self.assertIn(dconts[-1], ("D", "E"))
        if self.paper:  # 15 a page on paper
            self.assertGreaterEqual(len(dconts), 2, dconts)

        await self.step_websocket()

    async def step_websocket(self) -> None:
        notice_tr = "H0STCNI9" if self.paper else "H0STCNI0"
        approval = await self.client.approval_key()
        data_map: dict[str, dict[str, Any]] = {}
        frames: dict[str, list[tuple[int, str]]] = {"H0STCNT0": [], "H0STASP0": [], notice_tr: []}
        acks: dict[str, dict[str, Any]] = {}
        pingpongs = 0

        def request(tr_id: str, tr_key: str) -> str:  # kis_auth.data_fetch
            headers = {"content-type": "utf-8", "approval_key": approval, "tr_type": "1", "custtype": "P"}
            return json.dumps({"header": headers, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}})

        async with websockets.connect(self.server.ws_url + "/tryitout", ping_interval=None) as ws:

            async def pump_until(done: Any, what: str) -> None:
                nonlocal pingpongs
                deadline = time.monotonic() + TIMEOUT
                while not done():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise AssertionError(
                            f"timed out waiting for {what}; acks={acks} "
                            f"frames={ {k: len(v) for k, v in frames.items()} }"
                        )
                    raw = await asyncio.wait_for(ws.recv(), left)
                    assert isinstance(raw, str)
                    if raw[0] in ("0", "1"):
                        d1 = raw.split("|")
                        self.assertGreaterEqual(len(d1), 4, raw)
                        tr_id, d = d1[1], d1[3]
                        dm = data_map[tr_id]
                        if dm.get("encrypt") == "Y":
                            d = aes_cbc_base64_dec(dm["key"], dm["iv"], d)
                        else:
                            self.assertEqual(
                                raw[0], "0", f"encrypted {tr_id} frame but its ACK said encrypt=N"
                            )
                        frames[tr_id].append((int(d1[2]), d))
                        continue
                    rdic = json.loads(raw)  # kis_auth.system_resp
                    tr_id = rdic["header"]["tr_id"]
                    if tr_id == "PINGPONG":
                        self.assertNotIn("body", rdic)
                        pingpongs += 1
                        await ws.pong(raw)
                        continue
                    tr_key, encrypt = rdic["header"]["tr_key"], rdic["header"]["encrypt"]
                    body = rdic["body"]
                    acks[tr_id] = {
                        "tr_key": tr_key,
                        "rt_cd": body["rt_cd"],
                        "msg_cd": body["msg_cd"],
                        "msg1": body["msg1"],
                        "encrypt": encrypt,
                    }
                    entry = data_map.setdefault(tr_id, {})
                    entry["encrypt"] = encrypt
                    if "output" in body:
                        entry["iv"], entry["key"] = body["output"]["iv"], body["output"]["key"]

            for tr_id, tr_key in (("H0STCNT0", "005930"), ("H0STASP0", "005930"), (notice_tr, HTS_ID)):
                data_map.setdefault(tr_id, {})
                await ws.send(request(tr_id, tr_key))
            await pump_until(lambda: len(acks) == 3, "three subscribe ACKs")
            for tr_id, ack in acks.items():
                self.assertEqual(
                    (ack["rt_cd"], ack["msg_cd"], ack["msg1"]), ("0", "OPSP0000", "SUBSCRIBE SUCCESS")
                )
                self.assertEqual(len(data_map[tr_id]["iv"]), 16)
                self.assertEqual(len(data_map[tr_id]["key"]), 32)
            self.assertEqual(acks[notice_tr]["encrypt"], "Y")
            self.assertEqual(acks["H0STCNT0"]["encrypt"], "N")

            await pump_until(
                lambda: frames["H0STCNT0"] and frames["H0STASP0"] and pingpongs >= 1,
                "price and order-book frames and a PINGPONG",
            )
            for tr_id, width in (("H0STCNT0", N_H0STCNT0), ("H0STASP0", N_H0STASP0)):
                for count, payload in frames[tr_id]:
                    self.assertEqual(len(payload.split("^")), width * count, (tr_id, count))
                    self.assertEqual(payload.split("^")[0], "005930")

            async def pong_counted() -> bool:
                sessions = (await self.admin("GET", "/stats"))["ws"]["sessions"]
                return any(s.get("pongs", 0) >= 1 for s in sessions)

            await wait_until(pong_counted, timeout=TIMEOUT, message="the simulator to count the pong frame")

            odno = (await self.buy_market("005930", 2))["ODNO"]

            def notices_for_order() -> list[list[str]]:
                return [f for f in (d.split("^") for _, d in frames[notice_tr]) if f[ODER_NO] == odno]

            def filled() -> bool:
                fills = [f for f in notices_for_order() if len(f) > CNTG_YN and f[CNTG_YN] == "2"]
                return sum(int(f[CNTG_QTY]) for f in fills) >= 2

            await pump_until(filled, "the decrypted execution notices of the market buy")
            notices = notices_for_order()
            for f in notices:
                self.assertEqual(len(f), N_H0STCNI0, f)
                self.assertEqual(f[0], HTS_ID)
            self.assertIn("1", [f[CNTG_YN] for f in notices])  # the order acknowledgment
            for f in notices:
                if f[CNTG_YN] == "2":
                    self.assertGreater(int(f[CNTG_UNPR]), 0, f)

    # --- the strict official APIResp ---------------------------------------------------------------------

    async def check_official_header_namedtuple(self) -> None:
        """``APIResp._setHeader`` verbatim: a lowercase non-identifier header name raises ValueError."""
        await self.client.auth()
        headers = dict(self.client.base_headers, tr_id="FHKST01010100", custtype="P", tr_cont="")
        res = await self.http.get(
            PRICE, headers=headers, params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
        )
        self.assertEqual(res.status_code, 200, res.text)
        fld = lowercase_headers(res)
        header = namedtuple("header", fld.keys())(**fld)  # raises on e.g. "content-type"
        self.assertEqual(header.tr_cont, "")


class OfficialStyleLiveTest(OfficialStyleFlow):
    paper = False

    async def test_official_apiresp_header_namedtuple(self) -> None:
        await self.check_official_header_namedtuple()

    async def test_examples_llm_live_only_inquiries(self) -> None:
        """``inquire_psbl_rvsecncl`` (recursing on M/F), ``inquire_asking_price_exp_ccn`` and ``search_info``
        the way the examples_llm samples call them; every body must fit ``APIResp``'s namedtuple."""
        await self.client.auth()
        lower = self.sim.market.krx["005930"].lower
        placed = []
        for qty in range(1, 53):  # 52 resting orders: two pages of at most 50
            r = await self.client.url_fetch(ORDER_CASH, "TTTC0012U", "", {
                "CANO": self.cano, "ACNT_PRDT_CD": self.prdt, "PDNO": "005930", "ORD_DVSN": "00",
                "ORD_QTY": str(qty), "ORD_UNPR": str(lower), "EXCG_ID_DVSN_CD": "KRX", "SLL_TYPE": "",
                "CNDT_PRIC": ""}, post=True)
            self.assertTrue(r.is_ok(), r.body)
            placed.append(r.body.output["ODNO"])
        rows: list[dict[str, str]] = []
        conts: list[str] = []
        tr_cont, fk, nk = "", "", ""
        for _ in range(10):  # max_depth
            r = await self.client.url_fetch(PSBL_RVSECNCL, "TTTC0084R", tr_cont, {
                "CANO": self.cano, "ACNT_PRDT_CD": self.prdt, "INQR_DVSN_1": "1", "INQR_DVSN_2": "0",
                "CTX_AREA_FK100": fk, "CTX_AREA_NK100": nk})
            self.assertTrue(r.is_ok(), r.body)
            self.assertIsInstance(r.body.output, list)
            rows += r.body.output
            conts.append(r.header.tr_cont)
            tr_cont, fk, nk = r.header.tr_cont, r.body.ctx_area_fk100, r.body.ctx_area_nk100
            if tr_cont not in ("M", "F"):
                break
            tr_cont = "N"
        self.assertEqual(conts, ["F", "E"])
        self.assertEqual(sorted(row["odno"] for row in rows), sorted(placed))
        self.assertTrue(all(row["psbl_qty"] == row["ord_qty"] for row in rows))

        r = await self.client.url_fetch(ASKING_PRICE, "FHKST01010200", "",
                                        {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"})
        self.assertTrue(r.is_ok(), r.body)
        self.assertIsInstance(r.body.output1, dict)  # DataFrame([output1])
        self.assertIsInstance(r.body.output2, dict)  # DataFrame([output2])
        self.assertIn("askp10", r.body.output1)
        r = await self.client.url_fetch(SEARCH_INFO, "CTPF1604R", "", {"PDNO": "000660", "PRDT_TYPE_CD": "300"})
        self.assertTrue(r.is_ok(), r.body)
        self.assertEqual(r.body.output["shtn_pdno"], "000660")


class OfficialStylePaperTest(OfficialStyleFlow):
    paper = True
    cano = "60606060"


if __name__ == "__main__":
    unittest.main()
