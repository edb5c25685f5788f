"""Simulator REST conformance: the gateway gate (app key, bearer, tr_id), rate limits, routing, faults
(reference §3.1, §3.4, §5)."""

from __future__ import annotations

import asyncio
import time
import unittest

import httpx

from kis.broker import trids as T
from kis_testing import APP_KEY, APP_SECRET, wait_until

from .sim_rest_support import JSON_TYPE, RestCase, oauth_token

QUOTE_PARAMS = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
RATE_MSG = "초당 거래건수를 초과하였습니다."


class GatewayGateTest(RestCase):
    async def _quote_with(self, headers: dict[str, str]) -> httpx.Response:
        return await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS, headers=headers)

    async def test_missing_app_key_and_secret(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        del headers["appkey"]
        body = self.assert_envelope(await self._quote_with(headers), 500, "1", "EGW00102")
        self.assertEqual(body["msg1"], "AppKey는 필수입니다.")  # gateway errors are not padded
        headers = await self.headers(T.INQUIRE_PRICE)
        del headers["appsecret"]
        self.assert_envelope(await self._quote_with(headers), 500, "1", "EGW00104", "AppSecret는 필수입니다.")

    async def test_authorization_must_be_bearer(self) -> None:
        token = await self.token()
        for value in (None, "", f"Basic {token}", "Bearer", "Token abc", token):
            with self.subTest(authorization=value):
                headers = await self.headers(T.INQUIRE_PRICE)
                if value is None:
                    del headers["authorization"]
                else:
                    headers["authorization"] = value
                r = await self._quote_with(headers)
                self.assert_envelope(r, 500, "1", "EGW00205", "credentials_type이 유효하지 않습니다.(Bearer)")
                self.assertEqual(r.headers["tr_id"], T.INQUIRE_PRICE)

    async def test_garbage_and_foreign_tokens(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE, authorization="Bearer eyJhbGciOi.garbage.token")
        r = await self._quote_with(headers)
        self.assert_envelope(r, 500, "1", "EGW00121", "유효하지 않은 token 입니다.")
        other = await oauth_token(self.http, app_key="PSo" + "y" * 33)
        self.assertEqual(other.status_code, 200)
        # A token issued to another app key is not valid for this one.
        headers = await self.headers(T.INQUIRE_PRICE, authorization=f"Bearer {other.json()['access_token']}")
        self.assert_envelope(await self._quote_with(headers), 500, "1", "EGW00121")

    async def test_tr_id_missing_or_unknown(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        del headers["tr_id"]
        self.assert_envelope(await self._quote_with(headers), 500, "1", "OPSQ9999", "TR_ID가 없습니다.")
        for tr_id in ("FHKST99999999", "TTTC8434R", "HHDFS00000300"):
            with self.subTest(tr_id=tr_id):
                r = await self._quote_with(await self.headers(tr_id))
                self.assert_envelope(r, 500, "1", "OPSQ0002", "없는 서비스 코드 입니다")
                self.assertEqual(r.headers["tr_id"], tr_id)

    async def test_gate_order_app_key_before_token_before_tr_id(self) -> None:
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS, headers={"tr_id": "NOPE"})
        self.assert_envelope(r, 500, "1", "EGW00102")
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                headers={"appkey": APP_KEY, "appsecret": APP_SECRET})
        self.assert_envelope(r, 500, "1", "EGW00205")

    async def test_header_names_are_case_insensitive(self) -> None:
        token = await self.token()
        headers = {"Content-Type": JSON_TYPE, "Authorization": f"Bearer {token}", "appKey": APP_KEY,
                   "appSecret": APP_SECRET, "TR_ID": T.INQUIRE_PRICE}
        r = await self._quote_with(headers)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["rt_cd"], "0")
        # custtype is optional (python-kis never sends it): the call above had none.
        self.assertNotIn("custtype", {k.lower() for k in headers})

    async def test_unknown_path_and_wrong_method_get_a_json_envelope(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        cases = [("GET", "/uapi/domestic-stock/v1/quotations/no-such-api", 404),
                 ("POST", "/totally/unknown", 404),
                 ("GET", T.INQUIRE_PRICE_PATH + "/", 404),  # no slash redirect: KIS paths are exact
                 ("GET", T.ORDER_CASH_PATH, 405),
                 ("POST", T.INQUIRE_PRICE_PATH, 405)]
        for method, path, status in cases:
            with self.subTest(method=method, path=path):
                r = await self.http.request(method, path, headers=headers, content=b"{not json")
                self.assertNotIn("Traceback", r.text)
                self.assertNotIn("<html", r.text.lower())
                self.assert_envelope(r, status, "1", "EGW00202", "GW 라우팅 오류")

    async def test_paper_tr_id_on_live_host_is_unknown(self) -> None:
        r = await self.http.get(T.INQUIRE_BALANCE_PATH, params={"CANO": "12345678"},
                                headers=await self.headers("VTTC8434R"))
        self.assert_envelope(r, 500, "1", "OPSQ0002")


class PaperHostGateTest(RestCase):
    paper = True

    async def test_live_account_tr_on_paper_host_is_egw00213(self) -> None:
        for path, tr_id in ((T.INQUIRE_BALANCE_PATH, "TTTC8434R"), (T.ORDER_CASH_PATH, "TTTC0012U"),
                            (T.ORDER_CASH_PATH, "TTTC0802U"), (T.INQUIRE_DAILY_CCLD_PATH, "TTTC0081R")):
            with self.subTest(tr_id=tr_id):
                method = "POST" if path == T.ORDER_CASH_PATH else "GET"
                r = await self.http.request(method, path, headers=await self.headers(tr_id), json={})
                self.assert_envelope(r, 500, "1", "EGW00213", "모의투자 TR 이 아닙니다.")
        self.assertEqual((await self.stats())["orders"], 0)

    async def test_unknown_tr_on_paper_host_is_still_opsq0002(self) -> None:
        r = await self.http.get(T.INQUIRE_BALANCE_PATH, headers=await self.headers("VTTC9999R"))
        self.assert_envelope(r, 500, "1", "OPSQ0002")


class RateLimitTest(RestCase):
    rate_limit_per_s = 5

    async def _quote(self, headers: dict[str, str]) -> httpx.Response:
        return await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS, headers=headers)

    async def test_burst_over_limit_gets_egw00201_then_recovers(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        answers = await asyncio.gather(*(self._quote(headers) for _ in range(8)))
        ok = [r for r in answers if r.status_code == 200]
        limited = [r for r in answers if r.status_code != 200]
        self.assertEqual(len(ok), 5)
        self.assertEqual(len(limited), 3)
        for r in ok:
            self.assertEqual(r.json()["rt_cd"], "0")
        for r in limited:
            self.assert_envelope(r, 500, "1", "EGW00201", RATE_MSG)
            self.assertEqual(r.headers["tr_id"], T.INQUIRE_PRICE)
        stats = await self.stats()
        self.assertEqual(stats["rate_limit_per_s"], 5)
        self.assertEqual(stats["rest_errors"].get("EGW00201"), 3)
        # Rejected calls were not processed.
        self.assertEqual(stats["rest_calls"].get(T.INQUIRE_PRICE), 5)

        async def served() -> bool:
            return (await self._quote(headers)).status_code == 200

        await wait_until(served, timeout=3.0, interval=0.1, message="rate limit window to pass")

    async def test_calls_paced_under_the_limit_never_limited(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        spacing = 0.3  # ~3.3 calls/s against a limit of 5/s
        last_start = 0.0
        for _ in range(6):  # more calls than the limit, spread over more than one second
            # Pacing is the behaviour under test here: the next call waits for its slot (deadline-bounded).
            await wait_until(lambda last=last_start: time.monotonic() >= last + spacing, timeout=2.0,
                             interval=0.01, message="next pacing slot")
            last_start = time.monotonic()
            r = await self._quote(headers)
            self.assertEqual(r.status_code, 200, r.text)
        stats = await self.stats()
        self.assertNotIn("EGW00201", stats["rest_errors"])
        self.assertEqual(stats["rest_calls"].get(T.INQUIRE_PRICE), 6)

    async def test_limit_is_shared_across_trs_and_separate_per_app_key(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        balance_headers = await self.headers(T.INQUIRE_BALANCE.live)
        answers = await asyncio.gather(*(self._quote(headers) for _ in range(5)))
        self.assertTrue(all(r.status_code == 200 for r in answers))
        r = await self.http.get(T.INQUIRE_BALANCE_PATH, params={}, headers=balance_headers)
        self.assert_envelope(r, 500, "1", "EGW00201")
        other_key = "PSo" + "y" * 33
        other_token = (await oauth_token(self.http, app_key=other_key)).json()["access_token"]
        r = await self._quote({**headers, "appkey": other_key, "authorization": f"Bearer {other_token}"})
        self.assertEqual(r.status_code, 200, r.text)


class DefaultLiveRateLimitTest(RestCase):
    rate_limit_per_s = None  # the live default, 20/s

    async def test_live_default_is_twenty_per_second(self) -> None:
        self.assertEqual((await self.stats())["rate_limit_per_s"], 20)
        headers = await self.headers(T.INQUIRE_PRICE)
        answers = await asyncio.gather(*(self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                                       headers=headers) for _ in range(24)))
        codes = sorted(r.status_code for r in answers)
        self.assertEqual(codes, [200] * 20 + [500] * 4)
        self.assertEqual((await self.stats())["rest_errors"].get("EGW00201"), 4)


class DefaultPaperRateLimitTest(RestCase):
    paper = True
    rate_limit_per_s = None  # the paper default, 2/s

    async def test_paper_default_is_two_per_second(self) -> None:
        self.assertEqual((await self.stats())["rate_limit_per_s"], 2)
        headers = await self.headers(T.INQUIRE_PRICE)
        answers = await asyncio.gather(*(self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                                       headers=headers) for _ in range(3)))
        self.assertEqual(sorted(r.status_code for r in answers), [200, 200, 500])
        limited = next(r for r in answers if r.status_code == 500)
        self.assert_envelope(limited, 500, "1", "EGW00201", RATE_MSG)


class FaultInjectionTest(RestCase):
    async def _quote(self) -> httpx.Response:
        return await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                   headers=await self.headers(T.INQUIRE_PRICE))

    async def test_rest_5xx_burst(self) -> None:
        await self.token()
        faults = await self.admin("POST", "/faults", {"rest_5xx_burst": 2})
        self.assertEqual(faults["rest_5xx_burst"], 2)
        for _ in range(2):
            self.assert_envelope(await self._quote(), 500, "1", "EGW00002", "서버 에러가 발생하였습니다.")
        r = await self._quote()
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["rt_cd"], "0")
        stats = await self.stats()
        self.assertEqual(stats["rest_errors"].get("EGW00002"), 2)
        self.assertEqual(stats["rest_calls"].get(T.INQUIRE_PRICE), 1)  # failed calls were not processed
        self.assertEqual((await self.admin("GET", "/faults"))["rest_5xx_burst"], 0)

    async def test_rate_limit_storm_then_recovery(self) -> None:
        await self.token()
        await self.admin("POST", "/faults", {"rate_limit_storm_s": 0.4})
        self.assert_envelope(await self._quote(), 500, "1", "EGW00201", RATE_MSG)

        async def recovered() -> bool:
            r = await self._quote()
            if r.status_code != 200:
                self.assertEqual(r.json()["msg_cd"], "EGW00201")
            return r.status_code == 200

        await wait_until(recovered, timeout=3.0, interval=0.05, message="storm to end")
        self.assertGreaterEqual((await self.stats())["rest_errors"].get("EGW00201", 0), 1)

    async def test_latency_is_added(self) -> None:
        await self.token()
        await self.admin("POST", "/faults", {"latency_ms": 300})
        start = time.monotonic()
        r = await self._quote()
        elapsed = time.monotonic() - start
        self.assertEqual(r.json()["rt_cd"], "0")
        self.assertGreaterEqual(elapsed, 0.3)
        await self.admin("POST", "/faults", {"latency_ms": 0})
        self.assertEqual((await self.admin("GET", "/faults"))["latency_ms"], 0)

    async def test_unknown_fault_is_rejected(self) -> None:
        r = await self.http.post("/__sim/faults", json={"no_such_fault": 1})
        self.assertEqual(r.status_code, 400)
        self.assertIn("unknown fault", r.json()["error"])


if __name__ == "__main__":
    unittest.main()
