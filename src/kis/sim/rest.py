"""The simulator's REST face: the KIS paths, headers, TR ids, envelopes and limits (reference §2–§5).

Every KIS call passes the same gate in the order the real gateway applies it — faults, app key,
rate limit, bearer token, tr_id — before a handler sees it. No request ever gets a traceback: unknown
failures become HTTP 500 ``EGW00002``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kis.broker import fields as F
from kis.broker import trids as T
from kis.broker.codes import (
    MSG_INQUIRY_DONE,
    MSG_INQUIRY_EMPTY,
    MSG_INQUIRY_LAST,
    MSG_INQUIRY_MORE,
    MSG_ORDER_SENT,
    MSG_QUOTE_OK,
    MSG_SEARCHED,
)
from kis.clock import KST
from kis.krx import is_on_tick
from kis.logs import get_logger
from kis.sim.auth import AuthError
from kis.sim.engine import Simulator
from kis.sim.envelope import (
    KisHttpError,
    OAuthError,
    business_reject,
    envelope_response,
    gateway_error,
    input_error,
    kis_json,
    oauth_error_response,
    pad_msg,
)
from kis.sim.exchange import BRANCH, BUY, MARKET_LIKE, SELL, SUPPORTED_DVSN, Account, Order, OrderReject
from kis.sim.market import UsState
from kis.sim.symbols import US_PRDT_TYPE_CD

log = get_logger("kis.sim.rest")

Handler = Callable[["Call"], Awaitable[Response]]

# Account/order TRs pad msg1 to 80 characters, their rejects included (reference §3.2); so do the
# ledger-side product lookups (CTPF…: "조회되었습니다" + spaces in captured answers).
PADDED_MSG1_HANDLERS = frozenset(
    {"order_buy", "order_sell", "rvsecncl", "balance", "psbl_order", "daily_ccld", "psbl_rvsecncl",
     "search_info", "search_stock_info"})

# search-info PRDT_TYPE_CD values (상품유형코드, DOC): 300 주식, 301 선물옵션, 302 채권, then the overseas
# markets. Only 300 and the US codes can hold a simulator symbol; the others answer "no data".
PRDT_TYPE_CODES = frozenset(
    {"300", "301", "302", "512", "513", "529", "515", "501", "543", "558", "507", "508", "551", "552"})
# search-stock-info takes the domestic ones only: 300 주식·ETF·ETN·ELW, 301 선물옵션, 302 채권, 306 ELS.
STOCK_PRDT_TYPE_CODES = frozenset({"300", "301", "302", "306"})

# ORD_DVSN (주문구분) names as inquire-daily-ccld / inquire-psbl-rvsecncl print them.
ORD_DVSN_NAMES = {
    "00": "지정가", "01": "시장가", "02": "조건부지정가", "03": "최유리지정가", "04": "최우선지정가",
    "05": "장전시간외", "06": "장후시간외", "07": "시간외단일가", "11": "IOC지정가", "12": "FOK지정가",
    "13": "IOC시장가", "14": "FOK시장가", "15": "IOC최유리", "16": "FOK최유리",
}

_REPEATED_SLASHES = re.compile(r"/{2,}")
_REPEATED_SLASHES_RAW = re.compile(rb"/{2,}")


class CollapseSlashes:
    """ASGI middleware: ``//uapi//x`` routes as ``/uapi/x`` (mojito2 requests ``base_url + "/" + path``
    with paths that already start with a slash; the real gateway answers those normally)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope)
            scope["path"] = _REPEATED_SLASHES.sub("/", scope["path"])
            if scope.get("raw_path"):
                scope["raw_path"] = _REPEATED_SLASHES_RAW.sub(b"/", scope["raw_path"])
        await self.app(scope, receive, send)


@dataclass
class Call:
    """One authenticated KIS call, as a handler sees it."""

    request: Request
    app_key: str
    tr_id: str
    tr_cont: str
    query: dict[str, str]  # upper-cased names: KIS query names are case-insensitive
    body: dict[str, Any] | None


@dataclass(frozen=True)
class TrRoute:
    handler_name: str
    tr_ids: frozenset[str]


def _q(call: Call, name: str, required: bool = True) -> str:
    value = call.query.get(name)
    if value is None:
        if required:
            raise input_error(name)
        return ""
    return value.strip()


def _b(call: Call, name: str, required: bool = True) -> str:
    """A body field; keys must be UPPERCASE (a lowercase key counts as missing, as on the real server)."""
    assert call.body is not None
    value = call.body.get(name)
    if value is None or (required and str(value).strip() == ""):
        if required:
            raise input_error(name)
        return ""
    return str(value).strip()


def _int(value: str, name: str, minimum: int = 0) -> int:
    # ASCII digits only: str.isdigit() also accepts "²" (int() then raises) and full-width "１".
    if not (value.isascii() and value.isdigit()) or int(value) < minimum:
        raise input_error(name)
    return int(value)


def _padded_cursor(text: str) -> str:
    return text.ljust(100)


class SimRestApp:
    def __init__(self, sim: Simulator, ws_stats: Callable[[], dict[str, Any]] | None = None) -> None:
        self.sim = sim
        self.ws_stats = ws_stats or (lambda: {})
        paper = sim.config.paper
        self.routes: dict[str, dict[str, str]] = {}
        self.methods: dict[str, str] = {}
        self._register(T.INQUIRE_PRICE_PATH, "GET", {T.INQUIRE_PRICE: "inquire_price"})
        self._register(T.ASKING_PRICE_PATH, "GET", {T.ASKING_PRICE: "asking_price"})
        # chk-holiday is live-only: the paper host answers CTCA0903R with EGW00213 (reference §4.1; a
        # third-party log shows "모의투자 TR 이 아닙니다." for CTCA0903R on the paper host). So are the
        # product lookups and the overseas price detail ("모의투자 미지원" in the portal docs).
        self._register(T.CHK_HOLIDAY_PATH, "GET", {} if paper else {T.CHK_HOLIDAY: "chk_holiday"})
        self._register(T.SEARCH_INFO_PATH, "GET", {} if paper else {T.SEARCH_INFO: "search_info"})
        self._register(T.SEARCH_STOCK_INFO_PATH, "GET",
                       {} if paper else {T.SEARCH_STOCK_INFO: "search_stock_info"})
        self._register(T.OVERSEAS_PRICE_PATH, "GET", {T.OVERSEAS_PRICE: "overseas_price"})
        self._register(T.OVERSEAS_PRICE_DETAIL_PATH, "GET",
                       {} if paper else {T.OVERSEAS_PRICE_DETAIL: "price_detail"})
        self._register(T.ORDER_CASH_PATH, "POST", {
            **dict.fromkeys(T.ORDER_BUY.ids(paper), "order_buy"),
            **dict.fromkeys(T.ORDER_SELL.ids(paper), "order_sell"),
        })
        self._register(T.ORDER_RVSECNCL_PATH, "POST", dict.fromkeys(T.ORDER_RVSECNCL.ids(paper), "rvsecncl"))
        self._register(T.INQUIRE_BALANCE_PATH, "GET", dict.fromkeys(T.INQUIRE_BALANCE.ids(paper), "balance"))
        self._register(T.INQUIRE_PSBL_ORDER_PATH, "GET",
                       dict.fromkeys(T.INQUIRE_PSBL_ORDER.ids(paper), "psbl_order"))
        self._register(T.INQUIRE_DAILY_CCLD_PATH, "GET", {
            **dict.fromkeys(T.INQUIRE_DAILY_CCLD.ids(paper), "daily_ccld"),
            **dict.fromkeys(T.INQUIRE_DAILY_CCLD_OLD.ids(paper), "daily_ccld"),
        })
        # 정정취소가능주문조회 has no paper TR ("모의투자 미지원").
        self._register(T.INQUIRE_PSBL_RVSECNCL_PATH, "GET",
                       {} if paper else dict.fromkeys(T.INQUIRE_PSBL_RVSECNCL.ids(False), "psbl_rvsecncl"))
        # Live TR ids, to recognise "live TR on the paper host" (EGW00213): account TRs and the live-only ones.
        self.live_only_trs = {
            tr for spec in (T.ORDER_BUY, T.ORDER_SELL, T.ORDER_RVSECNCL, T.INQUIRE_BALANCE,
                            T.INQUIRE_PSBL_ORDER, T.INQUIRE_DAILY_CCLD, T.INQUIRE_DAILY_CCLD_OLD,
                            T.INQUIRE_PSBL_RVSECNCL)
            for tr in spec.ids(False)
        } | {T.CHK_HOLIDAY, T.SEARCH_INFO, T.SEARCH_STOCK_INFO, T.OVERSEAS_PRICE_DETAIL}
        routes = [
            Route(T.TOKEN_PATH, self.token, methods=["POST"]),
            Route(T.REVOKE_PATH, self.revoke, methods=["POST"]),
            Route(T.APPROVAL_PATH, self.approval, methods=["POST"]),
            Route(T.HASHKEY_PATH, self.hashkey, methods=["POST"]),
            *(Route(path, self.kis_call, methods=[self.methods[path]]) for path in self.routes),
        ]
        from kis.sim.admin import admin_routes

        routes.extend(admin_routes(self))
        self.app = Starlette(
            routes=routes,
            middleware=[Middleware(CollapseSlashes)],
            exception_handlers={HTTPException: self._http_exception, Exception: self._unexpected},
        )
        # KIS paths are exact: "/inquire-price/" is unroutable (EGW00202 envelope), not a 307 redirect.
        self.app.router.redirect_slashes = False

    def _register(self, path: str, method: str, trs: dict[str, str]) -> None:
        self.routes[path] = trs
        self.methods[path] = method

    # --- error rendering ----------------------------------------------------------------------------

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/__sim"):
            return Response(orjson.dumps({"error": exc.detail}), exc.status_code,
                            media_type="application/json")
        # Unknown path or wrong method: the gateway cannot route it.
        return envelope_response(KisHttpError(exc.status_code, "1", "EGW00202", "GW 라우팅 오류"))

    async def _unexpected(self, request: Request, exc: Exception) -> Response:
        log.error("sim_rest_unexpected", path=request.url.path, error=repr(exc))
        return envelope_response(gateway_error("EGW00002"))

    # --- shared gate --------------------------------------------------------------------------------

    async def _faults_and_latency(self) -> None:
        faults = self.sim.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.rest_5xx_burst > 0:
            faults.rest_5xx_burst -= 1
            raise gateway_error("EGW00002")

    def _check_app_headers(self, request: Request) -> str:
        h = request.headers
        try:
            return self.sim.auth.check_app(h.get("appkey"), h.get("appsecret"))
        except AuthError as err:
            raise gateway_error(err.code) from None

    def _rate_limit(self, app_key: str) -> None:
        if self.sim.in_storm() or not self.sim.limiter.allow(app_key):
            raise gateway_error("EGW00201")

    def _check_token(self, request: Request, app_key: str) -> None:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise gateway_error("EGW00205")
        try:
            self.sim.auth.check_token(token.strip(), app_key)
        except AuthError as err:
            raise gateway_error(err.code) from None

    async def kis_call(self, request: Request) -> Response:
        path = request.url.path
        tr_id = request.headers.get("tr_id", "").strip()
        handler_name = None
        try:
            await self._faults_and_latency()
            app_key = self._check_app_headers(request)
            self._rate_limit(app_key)
            self._check_token(request, app_key)
            if not tr_id:
                raise gateway_error("OPSQ9999")
            handler_name = self.routes[path].get(tr_id)
            if handler_name is None:
                if self.sim.config.paper and tr_id in self.live_only_trs:
                    raise gateway_error("EGW00213")
                raise gateway_error("OPSQ0002")
            body = None
            if request.method == "POST":
                raw = await request.body()
                if not raw.strip():
                    raise gateway_error("OPSQ9995")
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise gateway_error("OPSQ9997") from None
                if not isinstance(body, dict):
                    raise gateway_error("OPSQ9997")
            call = Call(request, app_key, tr_id, request.headers.get("tr_cont", "").strip(),
                        {k.upper(): v for k, v in request.query_params.items()}, body)
            self.sim.rest_calls[tr_id] += 1
            response: Response = await getattr(self, handler_name)(call)
            return response
        except KisHttpError as err:
            if err.rt_cd != "0":
                self.sim.rest_errors[err.msg_cd] += 1
            pad = handler_name in PADDED_MSG1_HANDLERS and err.status == 200
            return envelope_response(err, tr_id, pad=pad)
        except OrderReject as rej:
            self.sim.rest_errors[rej.msg_cd] += 1
            return envelope_response(business_reject(rej.msg_cd, rej.msg1), tr_id, pad=True)
        except Exception:  # a simulator bug still answers like the gateway (tr_id echoed), not a traceback
            log.exception("sim_rest_unexpected", path=path, tr_id=tr_id)
            self.sim.rest_errors["EGW00002"] += 1
            return envelope_response(gateway_error("EGW00002"), tr_id)

    # --- OAuth ----------------------------------------------------------------------------------------

    async def _oauth_body(self, request: Request) -> dict[str, Any]:
        await self._faults_and_latency_oauth()
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise OAuthError("EGW00101")
        return body

    async def _faults_and_latency_oauth(self) -> None:
        if self.sim.faults.latency_ms > 0:
            await asyncio.sleep(self.sim.faults.latency_ms / 1000)

    async def token(self, request: Request) -> Response:
        try:
            body = await self._oauth_body(request)
            if body.get("grant_type") != "client_credentials":
                raise OAuthError("EGW00106")
            self.sim.rest_calls[T.TOKEN_PATH] += 1
            issued = self.sim.auth.issue_token(str(body.get("appkey") or ""),
                                               str(body.get("appsecret") or ""))
        except OAuthError as err:
            self.sim.rest_errors[err.code] += 1
            return oauth_error_response(err)
        except AuthError as err:
            self.sim.rest_errors[err.code] += 1
            return oauth_error_response(OAuthError(err.code))
        now = self.sim.clock.now()
        return kis_json({
            "access_token": issued.token,
            "access_token_token_expired": issued.expires_at.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S"),
            "token_type": "Bearer",
            "expires_in": max(0, int((issued.expires_at - now).total_seconds())),
        })

    async def revoke(self, request: Request) -> Response:
        try:
            body = await self._oauth_body(request)
            self.sim.rest_calls[T.REVOKE_PATH] += 1
            self.sim.auth.revoke(str(body.get("appkey") or ""), str(body.get("appsecret") or ""),
                                 str(body.get("token") or ""))
        except OAuthError as err:
            self.sim.rest_errors[err.code] += 1
            return oauth_error_response(err)
        except AuthError as err:
            self.sim.rest_errors[err.code] += 1
            return oauth_error_response(OAuthError(err.code))
        return kis_json({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})

    async def approval(self, request: Request) -> Response:
        try:
            body = await self._oauth_body(request)
            if body.get("grant_type") != "client_credentials":
                raise OAuthError("EGW00106")
            self.sim.rest_calls[T.APPROVAL_PATH] += 1
            key = self.sim.auth.issue_approval(str(body.get("appkey") or ""),
                                               str(body.get("secretkey") or ""))
        except OAuthError as err:
            self.sim.rest_errors[err.code] += 1
            return oauth_error_response(err)
        except AuthError as err:
            self.sim.rest_errors[err.code] += 1
            return oauth_error_response(OAuthError(err.code))
        return kis_json({"approval_key": key})

    async def hashkey(self, request: Request) -> Response:
        try:
            await self._faults_and_latency()
            app_key = self._check_app_headers(request)
            self._rate_limit(app_key)
            raw = await request.body()
            if not raw.strip():
                raise gateway_error("OPSQ9995")
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise gateway_error("OPSQ9997") from None
        except KisHttpError as err:
            self.sim.rest_errors[err.msg_cd] += 1
            return envelope_response(err)
        self.sim.rest_calls[T.HASHKEY_PATH] += 1
        return kis_json({"JsonBody": body, "HASH": hashlib.sha256(raw).hexdigest()})

    # --- quotations -----------------------------------------------------------------------------------

    def _krx_code(self, value: str, field: str) -> str:
        code = value.strip()
        if code.startswith("Q") or code.startswith("A"):
            code = code[1:]
        if code not in self.sim.market.krx:
            raise input_error(field)
        return code

    def _fid_code(self, call: Call) -> str:
        """FID_COND_MRKT_DIV_CODE (J/NX/UN) and FID_INPUT_ISCD of the domestic quotation TRs."""
        if _q(call, "FID_COND_MRKT_DIV_CODE").upper() not in ("J", "NX", "UN"):
            raise input_error("FID_COND_MRKT_DIV_CODE")
        return self._krx_code(_q(call, "FID_INPUT_ISCD"), "FID_INPUT_ISCD")

    async def inquire_price(self, call: Call) -> Response:
        code = self._fid_code(call)
        self.sim.refresh_quote(code)
        msg_cd, msg1 = MSG_QUOTE_OK
        return kis_json({"output": self.sim.market.inquire_price(code), "rt_cd": "0", "msg_cd": msg_cd,
                         "msg1": msg1}, tr_id=call.tr_id)

    async def asking_price(self, call: Call) -> Response:
        code = self._fid_code(call)
        self.sim.refresh_quote(code)
        book, expected = self.sim.market.asking_price(code)
        msg_cd, msg1 = MSG_QUOTE_OK
        return kis_json({"output1": book, "output2": expected, "rt_cd": "0", "msg_cd": msg_cd, "msg1": msg1},
                        tr_id=call.tr_id)

    def _us_symbol(self, call: Call) -> UsState:
        """AUTH/EXCD/SYMB of the overseas quotation TRs: the symbol's exchange or a US day-session code."""
        _q(call, "AUTH", required=False)
        excd = _q(call, "EXCD").upper()
        us = self.sim.market.us.get(_q(call, "SYMB").upper())
        if us is None:
            raise input_error("SYMB")
        if excd not in {us.info.exchange, "BAQ", "BAY", "BAA"}:
            raise input_error("EXCD")
        return us

    async def overseas_price(self, call: Call) -> Response:
        us = self._us_symbol(call)
        msg_cd, msg1 = MSG_QUOTE_OK
        return kis_json({"rt_cd": "0", "msg_cd": msg_cd, "msg1": msg1,
                         "output": self.sim.market.overseas_price(us.info.symbol)}, tr_id=call.tr_id)

    async def price_detail(self, call: Call) -> Response:
        us = self._us_symbol(call)
        msg_cd, msg1 = MSG_QUOTE_OK
        return kis_json({"output": self.sim.market.price_detail(us.info.symbol), "rt_cd": "0", "msg_cd": msg_cd,
                         "msg1": msg1}, tr_id=call.tr_id)

    def _product(self, call: Call, type_codes: frozenset[str]) -> tuple[str, str]:
        """PDNO and PRDT_TYPE_CD of the product lookups; a KRX PDNO may come as 00000A005930."""
        type_cd = _q(call, "PRDT_TYPE_CD")
        if type_cd not in type_codes:
            raise input_error("PRDT_TYPE_CD")
        pdno = _q(call, "PDNO").upper()
        if not pdno:
            raise input_error("PDNO")
        if len(pdno) == 12 and pdno.startswith("00000"):
            pdno = pdno[5:]
        return pdno, type_cd

    def _krx_product(self, pdno: str) -> str | None:
        code = pdno[1:] if pdno[:1] in ("A", "Q") and len(pdno) == 7 else pdno
        return code if code in self.sim.market.krx else None

    @staticmethod
    def _no_data() -> KisHttpError:
        """No product under that number and type: rt_cd "7" (python-kis tries the next type on it)."""
        return business_reject(*MSG_INQUIRY_EMPTY)

    def _searched(self, call: Call, output: dict[str, str]) -> Response:
        msg_cd, msg1 = MSG_SEARCHED
        return kis_json({"output": output, "rt_cd": "0", "msg_cd": msg_cd, "msg1": pad_msg(msg1)},
                        tr_id=call.tr_id)

    async def search_info(self, call: Call) -> Response:
        pdno, type_cd = self._product(call, PRDT_TYPE_CODES)
        market = self.sim.market
        if type_cd == "300":
            code = self._krx_product(pdno)
            if code is None:
                raise self._no_data()
            return self._searched(call, market.search_info(code))
        us = market.us.get(pdno)
        if us is None or US_PRDT_TYPE_CD.get(us.info.exchange) != type_cd:
            raise self._no_data()
        return self._searched(call, market.search_info_us(pdno))

    async def search_stock_info(self, call: Call) -> Response:
        pdno, type_cd = self._product(call, STOCK_PRDT_TYPE_CODES)
        code = self._krx_product(pdno) if type_cd == "300" else None
        if code is None:
            raise self._no_data()
        return self._searched(call, self.sim.market.search_stock_info(code))

    async def chk_holiday(self, call: Call) -> Response:
        from kis.clock import _calendar

        raw = _q(call, "BASS_DT")
        try:
            start = datetime.strptime(raw, "%Y%m%d").date()
        except ValueError:
            raise input_error("BASS_DT") from None
        cal = _calendar("XKRX")
        rows = []
        for i in range(20):
            day: date = start + timedelta(days=i)
            try:
                is_session = bool(cal.is_session(day.isoformat()))
            except Exception:  # outside the calendar's range: treat weekdays as open
                is_session = day.weekday() < 5
            yn = "Y" if is_session else "N"
            rows.append({"bass_dt": day.strftime("%Y%m%d"),
                         "wday_dvsn_cd": f"{(day.isoweekday() % 7) + 1:02d}", "bzdy_yn": yn,
                         "tr_day_yn": yn, "opnd_yn": yn, "sttl_day_yn": yn})
        last = rows[-1]["bass_dt"]
        msg_cd, msg1 = MSG_INQUIRY_DONE
        return kis_json({"ctx_area_nk": _padded_cursor(last), "ctx_area_fk": _padded_cursor(raw),
                         "output": rows, "rt_cd": "0", "msg_cd": msg_cd, "msg1": pad_msg(msg1)},
                        tr_id=call.tr_id, tr_cont="D")

    # --- accounts -------------------------------------------------------------------------------------

    def _account(self, cano: str, prdt: str, app_key: str) -> Account:
        if not (len(cano) == 8 and cano.isdigit() and len(prdt) == 2 and prdt.isdigit()):
            raise business_reject("APAC0081", "계좌번호 입력 오류입니다.")
        return self.sim.exchange.account(cano, prdt, app_key)

    def _order_session_open(self) -> None:
        if self.sim.kr_open():
            return
        if self.sim.config.paper:
            raise business_reject("40580000", "모의투자 장종료 입니다.", rt_cd="1")
        raise business_reject("APBK0919", "장운영일자가 주문일과 상이합니다.")

    async def _order_answer(self, call: Call, order: Order) -> Response:
        """The answer to an order KIS has already executed — unless a fault loses or delays it."""
        faults = self.sim.faults
        if faults.order_answer_lost > 0:
            faults.order_answer_lost -= 1
            self.sim.rest_errors["EGW00002"] += 1
            return envelope_response(gateway_error("EGW00002"), call.tr_id)
        if faults.order_answer_delay_ms > 0:
            await asyncio.sleep(faults.order_answer_delay_ms / 1000)
        msg_cd, msg1 = MSG_ORDER_SENT
        output = {"KRX_FWDG_ORD_ORGNO": "06010", "ODNO": order.odno, "ORD_TMD": order.ord_tmd}
        if faults.order_answer_no_odno > 0:
            faults.order_answer_no_odno -= 1
            output = {"KRX_FWDG_ORD_ORGNO": "06010", "ODNO": "", "ORD_TMD": order.ord_tmd}
        return kis_json({"rt_cd": "0", "msg_cd": msg_cd, "msg1": pad_msg(msg1), "output": output}, tr_id=call.tr_id)

    async def order_buy(self, call: Call) -> Response:
        return await self._order_cash(call, BUY)

    async def order_sell(self, call: Call) -> Response:
        return await self._order_cash(call, SELL)

    def _order_fault_before(self) -> None:
        faults = self.sim.faults
        if faults.order_fail_unprocessed > 0:
            faults.order_fail_unprocessed -= 1
            raise KisHttpError(500, "1", "EGW00002", "서버 에러가 발생하였습니다.")

    async def _order_cash(self, call: Call, side: str) -> Response:
        self._order_fault_before()
        acct = self._account(_b(call, "CANO"), _b(call, "ACNT_PRDT_CD"), call.app_key)
        code = self._krx_code(_b(call, "PDNO"), "PDNO")
        dvsn = _b(call, "ORD_DVSN")
        if dvsn not in SUPPORTED_DVSN:
            raise input_error("ORD_DVSN")
        qty = _int(_b(call, "ORD_QTY"), "ORD_QTY", minimum=1)
        price = _int(_b(call, "ORD_UNPR"), "ORD_UNPR")
        excg = _b(call, "EXCG_ID_DVSN_CD", required=False).upper()
        if excg not in ("", "KRX") and (self.sim.config.paper or excg not in ("NXT", "SOR")):
            raise input_error("EXCG_ID_DVSN_CD")
        if dvsn not in MARKET_LIKE:
            if price <= 0:
                raise input_error("ORD_UNPR")
            if not is_on_tick(price):
                raise business_reject("APBK0506", "주문단가를 호가단위에 맞게 입력하십시오.")
        self._order_session_open()
        order = self.sim.exchange.place(acct, code, side, dvsn, qty, price, self.sim.clock.now())
        return await self._order_answer(call, order)

    async def rvsecncl(self, call: Call) -> Response:
        acct = self._account(_b(call, "CANO"), _b(call, "ACNT_PRDT_CD"), call.app_key)
        _b(call, "KRX_FWDG_ORD_ORGNO")
        orgn = _b(call, "ORGN_ODNO")
        dvsn = _b(call, "ORD_DVSN")
        kind = _b(call, "RVSE_CNCL_DVSN_CD")
        if kind not in ("01", "02"):
            raise input_error("RVSE_CNCL_DVSN_CD")
        qty_all = _b(call, "QTY_ALL_ORD_YN").upper()
        if qty_all not in ("Y", "N"):
            raise input_error("QTY_ALL_ORD_YN")
        qty_text = _b(call, "ORD_QTY", required=False) or "0"
        price = _int(_b(call, "ORD_UNPR", required=False) or "0", "ORD_UNPR")
        qty = None if qty_all == "Y" else _int(qty_text, "ORD_QTY", minimum=1)
        orig = self.sim.exchange.find(acct, orgn)
        if orig is None:
            raise business_reject("APBK1664", "원주문번호가 존재하지 않습니다.")
        self._order_session_open()
        now = self.sim.clock.now()
        if kind == "02":
            record = self.sim.exchange.cancel(orig, qty, now)
        else:
            if dvsn not in SUPPORTED_DVSN:
                raise input_error("ORD_DVSN")
            if dvsn not in MARKET_LIKE and (price <= 0 or not is_on_tick(price)):
                raise business_reject("APBK0506", "주문단가를 호가단위에 맞게 입력하십시오.")
            record = self.sim.exchange.modify(orig, qty, price, dvsn, now)
        return await self._order_answer(call, record)

    def _page(self, call: Call, rows: list[Any], key: Callable[[Any], str],
              size: int) -> tuple[list[Any], str, str]:
        """Slice ``rows`` after the cursor in CTX_AREA_NK100; returns (page, next cursor, tr_cont)."""
        cursor = call.query.get("CTX_AREA_NK100", "").strip()
        start = 0
        if call.tr_cont == "N" and cursor:
            last = cursor.split("^")[-1] if "^" in cursor else cursor
            for i, row in enumerate(rows):
                if key(row) == last:
                    start = i + 1
                    break
        page = rows[start:start + size]
        more = start + size < len(rows)
        first = call.tr_cont != "N"
        tr_cont = ("F" if first else "M") if more else ("D" if first else "E")
        next_cursor = key(page[-1]) if page and more else ""
        return page, next_cursor, tr_cont

    async def balance(self, call: Call) -> Response:
        cano, prdt = _q(call, "CANO"), _q(call, "ACNT_PRDT_CD")
        acct = self._account(cano, prdt, call.app_key)
        for name in ("AFHR_FLPR_YN", "INQR_DVSN", "UNPR_DVSN", "FUND_STTL_ICLD_YN", "FNCG_AMT_AUTO_RDPT_YN",
                     "PRCS_DVSN"):
            _q(call, name)
        _q(call, "OFL_YN", required=False)
        if _q(call, "INQR_DVSN") != "01":
            raise input_error("INQR_DVSN")
        if _q(call, "AFHR_FLPR_YN").upper() not in ("N", "Y", "X"):
            raise input_error("AFHR_FLPR_YN")
        if _q(call, "PRCS_DVSN") not in ("00", "01"):
            raise input_error("PRCS_DVSN")
        holdings = sorted((h for h in acct.holdings.values() if h.qty or h.today_buy or h.today_sell),
                          key=lambda h: h.code)
        size = 20 if self.sim.config.paper else 50
        page, nk, tr_cont = self._page(call, holdings, lambda h: h.code, size)
        market = self.sim.market
        rows = []
        for h in page:
            st = market.krx[h.code]
            evlu = h.qty * st.price
            avg = h.cost / h.qty if h.qty else 0.0
            pfls = evlu - h.cost
            rows.append(dict(zip(F.BALANCE_OUTPUT1, (
                h.code, st.info.name, "현금", "0", "0", str(h.today_buy), str(h.today_sell), str(h.qty),
                str(h.sellable), f"{avg:.4f}", str(h.cost), str(st.price), str(evlu), str(pfls),
                f"{(pfls / h.cost * 100) if h.cost else 0:.2f}", "0.00", "", "0", "0", "", st.rate,
                str(st.diff), "20%", "20%", str(int(st.price * 0.7)), "0",
            ), strict=True)))
        scts = sum(h.qty * market.krx[h.code].price for h in acct.holdings.values())
        cost = sum(h.cost for h in acct.holdings.values())
        summary = dict(zip(F.BALANCE_OUTPUT2, (
            str(acct.cash), str(acct.cash), str(acct.cash), "0", "0", str(acct.today_buy_amt), "0", "0",
            str(acct.today_sell_amt), "0", "0", "0", "0", str(scts), str(scts + acct.cash),
            str(scts + acct.cash),
            "N", str(cost), str(scts), str(scts - cost), "0", str(scts + acct.cash), "0", "0.00",
        ), strict=True))
        msg_cd, msg1 = MSG_INQUIRY_DONE if tr_cont in ("D", "E") else MSG_INQUIRY_MORE
        return kis_json({"ctx_area_fk100": _padded_cursor(f"{cano}^{prdt}^"),
                         "ctx_area_nk100": _padded_cursor(f"{cano}^{prdt}^{nk}" if nk else ""),
                         "output1": rows, "output2": [summary], "rt_cd": "0", "msg_cd": msg_cd,
                         "msg1": pad_msg(msg1)}, tr_id=call.tr_id, tr_cont=tr_cont)

    async def psbl_order(self, call: Call) -> Response:
        acct = self._account(_q(call, "CANO"), _q(call, "ACNT_PRDT_CD"), call.app_key)
        code_raw = _q(call, "PDNO", required=False)
        price = _int(_q(call, "ORD_UNPR", required=False) or "0", "ORD_UNPR")
        dvsn = _q(call, "ORD_DVSN")
        _q(call, "CMA_EVLU_AMT_ICLD_YN")
        _q(call, "OVRS_ICLD_YN")
        unit = price
        if code_raw:
            code = self._krx_code(code_raw, "PDNO")
            st = self.sim.market.krx[code]
            unit = st.upper if dvsn in MARKET_LIKE or price == 0 else price
        cash = acct.orderable_cash
        qty = cash // unit if unit else 0
        values = (str(cash), "0", "0", "0", str(unit), str(cash), str(qty), str(cash), str(qty),
                  "0", "0", "0")
        msg_cd, msg1 = MSG_INQUIRY_DONE
        return kis_json({"output": dict(zip(F.PSBL_ORDER_OUTPUT, values, strict=True)), "rt_cd": "0",
                         "msg_cd": msg_cd, "msg1": pad_msg(msg1)}, tr_id=call.tr_id)

    async def psbl_rvsecncl(self, call: Call) -> Response:
        """The account's open orders with the quantity a modify/cancel may still move (psbl_qty)."""
        cano, prdt = _q(call, "CANO"), _q(call, "ACNT_PRDT_CD")
        acct = self._account(cano, prdt, call.app_key)
        by_symbol = _q(call, "INQR_DVSN_1")
        if by_symbol not in ("0", "1"):
            raise input_error("INQR_DVSN_1")
        side = _q(call, "INQR_DVSN_2")
        if side not in ("0", "1", "2"):
            raise input_error("INQR_DVSN_2")
        wanted = {"1": SELL, "2": BUY}.get(side)
        orders = [o for o in self.sim.exchange.orders.values()
                  if o.account is acct and o.is_open and (wanted is None or o.side == wanted)]
        # 0 주문: newest order first (the DOC example lists 0001569139 before 0001569138); 1 종목: by symbol.
        orders.sort(key=lambda o: o.odno, reverse=True)
        if by_symbol == "1":
            orders.sort(key=lambda o: o.code)
        page, nk, tr_cont = self._page(call, orders, lambda o: o.odno, 50)
        rows = [self._psbl_rvsecncl_row(o) for o in page]
        if not orders:
            msg_cd, msg1 = MSG_INQUIRY_EMPTY
        else:
            msg_cd, msg1 = MSG_INQUIRY_DONE if tr_cont in ("D", "E") else MSG_INQUIRY_MORE
        return kis_json({"ctx_area_fk100": _padded_cursor(f"{cano}^{prdt}^"),
                         "ctx_area_nk100": _padded_cursor(f"{cano}^{prdt}^{nk}" if nk else ""),
                         "output": rows, "rt_cd": "0", "msg_cd": msg_cd, "msg1": pad_msg(msg1)},
                        tr_id=call.tr_id, tr_cont=tr_cont)

    def _psbl_rvsecncl_row(self, o: Order) -> dict[str, str]:
        # rvse_cncl_dvsn_name: "" for an original order; a modifying order shows its side and "AMEND*"
        # (DOC example "BUY AMEND*"; the SELL form is inferred).
        amend = "" if o.rvse_cncl == "0" else f"{'BUY' if o.side == BUY else 'SELL'} AMEND*"
        values = (
            BRANCH, o.odno, o.orgn_odno, ORD_DVSN_NAMES.get(o.dvsn, "기타"), o.code,
            self.sim.market.krx[o.code].info.name, amend, str(o.qty), str(o.price), o.ord_tmd, str(o.filled),
            str(o.filled_amount), str(o.remaining), o.side, o.dvsn, "", "01", "KRX", "KRX", "0", "N",
        )
        return dict(zip(F.PSBL_RVSECNCL_OUTPUT, values, strict=True))

    async def daily_ccld(self, call: Call) -> Response:
        cano, prdt = _q(call, "CANO"), _q(call, "ACNT_PRDT_CD")
        acct = self._account(cano, prdt, call.app_key)
        try:
            start = datetime.strptime(_q(call, "INQR_STRT_DT"), "%Y%m%d").strftime("%Y%m%d")
        except ValueError:
            raise input_error("INQR_STRT_DT") from None
        try:
            end = datetime.strptime(_q(call, "INQR_END_DT"), "%Y%m%d").strftime("%Y%m%d")
        except ValueError:
            raise input_error("INQR_END_DT") from None
        side = _q(call, "SLL_BUY_DVSN_CD")
        if side not in ("00", "01", "02"):
            raise input_error("SLL_BUY_DVSN_CD")
        ccld = _q(call, "CCLD_DVSN")
        if ccld not in ("00", "01", "02"):
            raise input_error("CCLD_DVSN")
        order_dir = _q(call, "INQR_DVSN")
        if order_dir not in ("00", "01"):
            raise input_error("INQR_DVSN")
        pdno = _q(call, "PDNO", required=False)
        odno = _q(call, "ODNO", required=False)
        _q(call, "INQR_DVSN_3", required=False)
        _q(call, "INQR_DVSN_1", required=False)
        _q(call, "ORD_GNO_BRNO", required=False)
        orders = [o for o in self.sim.exchange.orders.values()
                  if o.account is acct and start <= o.ord_dt <= end
                  and (side == "00" or o.side == side)
                  and (not pdno or o.code == pdno)
                  and (not odno or o.odno == odno.zfill(10))
                  and (ccld == "00" or (ccld == "01" and o.filled > 0) or (ccld == "02" and o.remaining > 0))]
        orders.sort(key=lambda o: o.odno, reverse=(order_dir == "00"))
        size = 15 if self.sim.config.paper else 100
        page, nk, tr_cont = self._page(call, orders, lambda o: o.odno, size)
        rows = [self._ccld_row(o) for o in page]
        tot_qty = sum(o.qty for o in orders if o.rvse_cncl != "2")
        tot_ccld = sum(o.filled for o in orders)
        tot_amt = sum(o.filled_amount for o in orders)
        summary = dict(zip(F.DAILY_CCLD_OUTPUT2, (
            str(tot_qty), str(tot_ccld), str(tot_amt), "0", f"{(tot_amt / tot_ccld) if tot_ccld else 0:.0f}",
        ), strict=True))
        msg_cd, msg1 = MSG_INQUIRY_LAST if tr_cont in ("D", "E") else MSG_INQUIRY_MORE
        return kis_json({"ctx_area_fk100": _padded_cursor(f"{cano}^{prdt}^{start}^{end}^"),
                         "ctx_area_nk100": _padded_cursor(f"{cano}^{prdt}^{nk}" if nk else ""),
                         "output1": rows, "output2": summary, "rt_cd": "0", "msg_cd": msg_cd,
                         "msg1": pad_msg(msg1)}, tr_id=call.tr_id, tr_cont=tr_cont)

    def _ccld_row(self, o: Order) -> dict[str, str]:
        name = self.sim.market.krx[o.code].info.name
        dvsn_name = ORD_DVSN_NAMES.get(o.dvsn, "기타")
        if o.rvse_cncl == "2":
            dvsn_name = f"{dvsn_name}취소"
        elif o.rvse_cncl == "1":
            dvsn_name = f"{dvsn_name}정정"
        values = (
            o.ord_dt, "06010", o.odno, o.orgn_odno, dvsn_name, o.side,
            "현금매도" if o.side == SELL else "현금매수", o.code, name, str(o.qty), str(o.price), o.ord_tmd,
            str(o.filled), f"{o.avg_price:.0f}", "Y" if o.rvse_cncl == "2" else "", str(o.filled_amount), "",
            "", o.dvsn, str(o.qty if o.rvse_cncl == "2" else o.cancelled), str(max(o.remaining, 0)
                                                                          if o.rvse_cncl != "2" else 0),
            "0", "", "", "", "", "", "", "300", "01", "", "06010", "", "KRX", "", "",
        )
        return dict(zip(F.DAILY_CCLD_OUTPUT1, values, strict=True))
