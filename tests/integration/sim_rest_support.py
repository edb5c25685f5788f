"""Shared helpers for the simulator REST conformance suite (tests/integration/test_sim_rest_*.py).

Everything goes over real loopback HTTP to the in-process simulator; nothing is mocked.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import httpx

from kis.broker import trids as T
from kis.sim.engine import SimConfig
from kis_testing import APP_KEY, APP_SECRET, CANO, PRDT, SimTestCase, wait_until

JSON_TYPE = "application/json; charset=utf-8"
MSG1_WIDTH = 80


def order_body(code: str, qty: int, dvsn: str = "01", price: int = 0, **extra: str) -> dict[str, str]:
    """An order-cash body as the docs require it: UPPERCASE keys, every value a string."""
    return {"CANO": CANO, "ACNT_PRDT_CD": PRDT, "PDNO": code, "ORD_DVSN": dvsn, "ORD_QTY": str(qty),
            "ORD_UNPR": str(price), **extra}


def rvsecncl_body(odno: str, kind: str, qty: int = 0, price: int = 0, dvsn: str = "00",
                  qty_all: str = "Y", **extra: str) -> dict[str, str]:
    return {"CANO": CANO, "ACNT_PRDT_CD": PRDT, "KRX_FWDG_ORD_ORGNO": "06010", "ORGN_ODNO": odno,
            "ORD_DVSN": dvsn, "RVSE_CNCL_DVSN_CD": kind, "ORD_QTY": str(qty), "ORD_UNPR": str(price),
            "QTY_ALL_ORD_YN": qty_all, **extra}


def balance_params(**overrides: str) -> dict[str, str]:
    params = {"CANO": CANO, "ACNT_PRDT_CD": PRDT, "AFHR_FLPR_YN": "N", "OFL_YN": "", "INQR_DVSN": "01",
              "UNPR_DVSN": "01", "FUND_STTL_ICLD_YN": "N", "FNCG_AMT_AUTO_RDPT_YN": "N", "PRCS_DVSN": "00",
              "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    params.update(overrides)
    return params


def daily_ccld_params(day: str, **overrides: str) -> dict[str, str]:
    params = {"CANO": CANO, "ACNT_PRDT_CD": PRDT, "INQR_STRT_DT": day, "INQR_END_DT": day,
              "SLL_BUY_DVSN_CD": "00", "INQR_DVSN": "00", "PDNO": "", "CCLD_DVSN": "00", "ORD_GNO_BRNO": "",
              "ODNO": "", "INQR_DVSN_3": "00", "INQR_DVSN_1": "", "EXCG_ID_DVSN_CD": "KRX",
              "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    params.update(overrides)
    return params


class RestCase(SimTestCase):
    """A SimTestCase with KIS REST call helpers. The rate limit is lifted unless a test class needs it."""

    paper = False
    rate_limit_per_s: int | None = 1000

    def sim_config(self) -> SimConfig:
        return SimConfig(paper=self.paper, rate_limit_per_s=self.rate_limit_per_s, token_min_interval_s=60.0,
                         tick_interval_s=0.02)

    # --- TR ids for the host under test ---------------------------------------------------------------

    def tr(self, spec: T.AccountTr) -> str:
        return spec.current(self.sim.config.paper)

    # --- raw calls --------------------------------------------------------------------------------------

    async def kis_get(self, path: str, tr_id: str, params: dict[str, str] | None = None,
                      **extra_headers: str) -> httpx.Response:
        headers = await self.headers(tr_id, **extra_headers)
        return await self.http.get(path, params=params or {}, headers=headers)

    async def kis_post(self, path: str, tr_id: str, body: Any = None, content: bytes | None = None,
                       **extra_headers: str) -> httpx.Response:
        headers = await self.headers(tr_id, **extra_headers)
        if content is not None:
            return await self.http.post(path, content=content, headers=headers)
        return await self.http.post(path, json=body, headers=headers)

    # --- domain calls -----------------------------------------------------------------------------------

    async def quote(self, code: str) -> dict[str, str]:
        r = await self.kis_get(T.INQUIRE_PRICE_PATH, T.INQUIRE_PRICE,
                               {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["rt_cd"], "0", r.text)
        return r.json()["output"]

    async def buy(self, code: str, qty: int, dvsn: str = "01", price: int = 0, tr_id: str | None = None,
                  **extra: str) -> httpx.Response:
        return await self.kis_post(T.ORDER_CASH_PATH, tr_id or self.tr(T.ORDER_BUY),
                                   order_body(code, qty, dvsn, price, **extra))

    async def sell(self, code: str, qty: int, dvsn: str = "01", price: int = 0, tr_id: str | None = None,
                   **extra: str) -> httpx.Response:
        return await self.kis_post(T.ORDER_CASH_PATH, tr_id or self.tr(T.ORDER_SELL),
                                   order_body(code, qty, dvsn, price, **extra))

    async def ok_order(self, r: httpx.Response) -> str:
        """Assert an accepted order answer; returns its ODNO."""
        self.assertEqual(r.status_code, 200, r.text)
        body = r.json()
        self.assertEqual((body["rt_cd"], body["msg_cd"]), ("0", "APBK0013"), r.text)
        return str(body["output"]["ODNO"])

    async def revise(self, odno: str, kind: str, tr_id: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.kis_post(T.ORDER_RVSECNCL_PATH, tr_id or self.tr(T.ORDER_RVSECNCL),
                                   rvsecncl_body(odno, kind, **kwargs))

    async def balance(self, tr_cont: str = "", tr_id: str | None = None, **overrides: str) -> httpx.Response:
        extra = {"tr_cont": tr_cont}
        return await self.kis_get(T.INQUIRE_BALANCE_PATH, tr_id or self.tr(T.INQUIRE_BALANCE),
                                  balance_params(**overrides), **extra)

    async def daily_ccld(self, tr_cont: str = "", tr_id: str | None = None, day: str | None = None,
                         **overrides: str) -> httpx.Response:
        extra = {"tr_cont": tr_cont}
        return await self.kis_get(T.INQUIRE_DAILY_CCLD_PATH, tr_id or self.tr(T.INQUIRE_DAILY_CCLD),
                                   daily_ccld_params(day or await self.sim_today(), **overrides), **extra)

    # --- admin ------------------------------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("GET", "/stats")
        return result

    async def account_state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("GET", f"/accounts/{CANO}-{PRDT}")
        return result

    async def sim_today(self) -> str:
        clock = await self.admin("GET", "/clock")
        return str(clock["now"][:10].replace("-", ""))

    async def set_market_price(self, code: str, price: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("POST", f"/market/{code}", {"price": price})
        return result

    async def wait_filled(self, odno: str, qty: int, within_s: float = 5.0) -> None:
        async def filled() -> bool:
            orders = (await self.account_state())["orders"]
            return any(o["odno"] == odno and o["filled"] == qty for o in orders)

        await wait_until(filled, timeout=within_s, interval=0.02, message=f"order {odno} filled {qty}")

    # --- assertions -------------------------------------------------------------------------------------

    def assert_envelope(self, r: httpx.Response, status: int, rt_cd: str, msg_cd: str,
                        msg1: str | None = None) -> dict[str, Any]:
        """The rt_cd/msg_cd/msg1 error envelope: exactly those keys, JSON, no payload."""
        self.assertEqual(r.status_code, status, r.text)
        self.assertEqual(r.headers["content-type"], JSON_TYPE)
        self.assert_wire_header_names(r)
        body: dict[str, Any] = r.json()
        self.assertEqual(set(body), {"rt_cd", "msg_cd", "msg1"}, body)
        self.assertEqual((body["rt_cd"], body["msg_cd"]), (rt_cd, msg_cd), body)
        if msg1 is not None:
            self.assertEqual(body["msg1"].rstrip(), msg1)
        return body

    def assert_wire_header_names(self, r: httpx.Response) -> None:
        """KIS's own headers lowercase; every all-lowercase name a Python identifier.

        The official client (open-trading-api ``APIResp._setHeader``) keeps the header names that are
        ``islower()`` *as sent on the wire* and builds a ``namedtuple`` from them, so a lowercase
        ``content-type`` would crash it; ``tr_cont`` must be among them (reference §3.2).
        """
        names = [name.decode("latin-1") for name, _ in r.headers.raw]
        lowercase = [name for name in names if name.islower()]
        for kis_header in ("tr_id", "tr_cont", "gt_uid"):
            self.assertIn(kis_header, lowercase)
        self.assertIn("Content-Type", names)
        header = namedtuple("header", lowercase)(*(r.headers[name] for name in lowercase))
        self.assertEqual(header.tr_cont, r.headers["tr_cont"])

    def assert_input_error(self, r: httpx.Response, field: str) -> dict[str, Any]:
        """The measured OPSQ2001 shape for a bad/missing input field: HTTP 200, rt_cd "2"."""
        return self.assert_envelope(r, 200, "2", "OPSQ2001", f"ERROR : INPUT INVALID_CHECK_{field}")

    def assert_padded(self, msg1: str, text: str) -> None:
        self.assertEqual(len(msg1), MSG1_WIDTH, repr(msg1))
        self.assertEqual(msg1.rstrip(" "), text)


async def oauth_token(http: httpx.AsyncClient, app_key: str = APP_KEY,
                      app_secret: str = APP_SECRET) -> httpx.Response:
    return await http.post(T.TOKEN_PATH, json={"grant_type": "client_credentials", "appkey": app_key,
                                              "appsecret": app_secret})
