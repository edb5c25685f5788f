"""Simulator REST conformance: OAuth (tokenP, revokeP, Approval), hashkey, token expiry
(reference §2, §5.3)."""

from __future__ import annotations

import base64
import json
import re
import unittest
import uuid
from datetime import datetime, timedelta

from kis.broker import trids as T
from kis.clock import KST
from kis.sim.engine import SimConfig
from kis_testing import APP_KEY, APP_SECRET, wait_until

from .sim_rest_support import JSON_TYPE, RestCase, oauth_token

EXPIRY_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
QUOTE_PARAMS = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


def _b64json(part: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


class TokenIssueTest(RestCase):
    async def test_token_success_shape(self) -> None:
        before = datetime.now(KST)
        r = await oauth_token(self.http)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["content-type"], JSON_TYPE)
        names = [name for name, _ in r.headers.raw]
        self.assertIn(b"Content-Type", names)
        self.assertNotIn(b"content-type", names)
        body = r.json()
        self.assertEqual(list(body),
                         ["access_token", "access_token_token_expired", "token_type", "expires_in"])
        token = body["access_token"]
        self.assertIsInstance(token, str)
        self.assertTrue(346 <= len(token) <= 350, len(token))
        header_b64, payload_b64, signature = token.split(".")
        self.assertTrue(signature)
        self.assertEqual(_b64json(header_b64), {"typ": "JWT", "alg": "HS512"})
        # KIS serialises the JOSE header typ-first: every real token starts with this prefix (DOC example).
        self.assertTrue(token.startswith("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9."), token[:40])
        payload = _b64json(payload_b64)
        self.assertIn("exp", payload)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertIs(type(body["expires_in"]), int)
        self.assertTrue(86_390 <= body["expires_in"] <= 86_400, body["expires_in"])
        expiry_text = body["access_token_token_expired"]
        self.assertRegex(expiry_text, EXPIRY_FORMAT)
        expiry = datetime.strptime(expiry_text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
        self.assertLess(abs(expiry - (before + timedelta(hours=24))), timedelta(seconds=5))
        # The JWT's own exp is the same instant as the KST text.
        self.assertEqual(payload["exp"], int(expiry.timestamp()))

    async def test_token_works_as_bearer(self) -> None:
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                headers=await self.headers(T.INQUIRE_PRICE))
        self.assertEqual(r.json()["rt_cd"], "0", r.text)

    async def test_second_issuance_within_a_minute_is_403(self) -> None:
        first = await oauth_token(self.http)
        self.assertEqual(first.status_code, 200)
        second = await oauth_token(self.http)
        self.assertEqual(second.status_code, 403)
        self.assertEqual(second.headers["content-type"], JSON_TYPE)
        self.assertEqual(second.json(), {
            "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
            "error_code": "EGW00133",
        })
        self.assertEqual(list(second.json()), ["error_description", "error_code"])
        # The first token is unaffected.
        self._token = first.json()["access_token"]
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                headers=await self.headers(T.INQUIRE_PRICE))
        self.assertEqual(r.json()["rt_cd"], "0")
        stats = await self.stats()
        self.assertEqual(stats["token_issuances"], 1)
        self.assertEqual(stats["rest_errors"].get("EGW00133"), 1)

    async def test_minute_limit_is_per_app_key(self) -> None:
        self.assertEqual((await oauth_token(self.http)).status_code, 200)
        other = await oauth_token(self.http, app_key="PSo" + "y" * 33)
        self.assertEqual(other.status_code, 200, other.text)

    async def test_oauth_errors_use_error_code_shape(self) -> None:
        cases = [
            ({"grant_type": "client_credentials", "appkey": APP_KEY}, "EGW00104"),
            ({"grant_type": "client_credentials", "appsecret": APP_SECRET}, "EGW00102"),
            ({"grant_type": "password", "appkey": APP_KEY, "appsecret": APP_SECRET}, "EGW00106"),
        ]
        for body, code in cases:
            with self.subTest(code=code):
                r = await self.http.post(T.TOKEN_PATH, json=body)
                self.assertEqual(r.status_code, 403, r.text)
                self.assertEqual(set(r.json()), {"error_code", "error_description"})
                self.assertEqual(r.json()["error_code"], code)
        r = await self.http.post(T.TOKEN_PATH, content=b"grant_type=client_credentials",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status_code, 403)
        self.assertEqual(r.json()["error_code"], "EGW00101")


class TokenReissueTest(RestCase):
    def sim_config(self) -> SimConfig:
        return SimConfig(rate_limit_per_s=1000, token_min_interval_s=0.2, tick_interval_s=0.02)

    async def _issue_after_interval(self) -> dict[str, object]:
        """tokenP again as soon as the (shortened) one-per-interval rule lets us."""
        answers: list[dict[str, object]] = []

        async def issued() -> bool:
            r = await oauth_token(self.http)
            if r.status_code == 403:
                self.assertEqual(r.json()["error_code"], "EGW00133")
                return False
            self.assertEqual(r.status_code, 200, r.text)
            answers.append(r.json())
            return True

        await wait_until(issued, timeout=3.0, interval=0.05, message="tokenP after the minimum interval")
        return answers[0]

    async def test_same_token_within_six_hours(self) -> None:
        first = (await oauth_token(self.http)).json()
        again = await self._issue_after_interval()
        self.assertEqual(again["access_token"], first["access_token"])
        # The absolute expiry stays that of the original issue.
        self.assertEqual(again["access_token_token_expired"], first["access_token_token_expired"])
        self.assertLessEqual(again["expires_in"], first["expires_in"])  # type: ignore[operator]
        self.assertEqual((await self.stats())["token_issuances"], 1)

    async def test_new_token_after_six_hours(self) -> None:
        first = (await oauth_token(self.http)).json()
        await self.admin("POST", "/clock", {"advance_s": 6 * 3600 + 1})
        again = await self._issue_after_interval()
        self.assertNotEqual(again["access_token"], first["access_token"])
        self.assertNotEqual(again["access_token_token_expired"], first["access_token_token_expired"])
        self.assertEqual((await self.stats())["token_issuances"], 2)
        # Both tokens are still inside their 24 h life.
        for token in (first["access_token"], again["access_token"]):
            self._token = str(token)
            r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                    headers=await self.headers(T.INQUIRE_PRICE))
            self.assertEqual(r.json()["rt_cd"], "0", r.text)

    async def test_new_token_after_revoke(self) -> None:
        first = (await oauth_token(self.http)).json()
        r = await self.http.post(T.REVOKE_PATH, json={"appkey": APP_KEY, "appsecret": APP_SECRET,
                                                      "token": first["access_token"]})
        self.assertEqual(r.status_code, 200)
        again = await self._issue_after_interval()
        self.assertNotEqual(again["access_token"], first["access_token"])


class RevokeTest(RestCase):
    async def test_revoke_success_and_revoked_token_rejected(self) -> None:
        token = await self.token()
        r = await self.http.post(T.REVOKE_PATH,
                                 json={"appkey": APP_KEY, "appsecret": APP_SECRET, "token": token})
        self.assertEqual(r.status_code, 200, r.text)
        body = r.json()
        self.assertEqual(body, {"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})
        self.assertIs(type(body["code"]), int)
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                headers=await self.headers(T.INQUIRE_PRICE))
        self.assert_envelope(r, 500, "1", "EGW00121", "유효하지 않은 token 입니다.")

    async def test_revoke_unknown_or_twice(self) -> None:
        r = await self.http.post(T.REVOKE_PATH, json={"appkey": APP_KEY, "appsecret": APP_SECRET,
                                                      "token": "not-a-token"})
        self.assertEqual(r.status_code, 403)
        self.assertEqual(r.json(),
                         {"error_description": "유효하지 않은 token 입니다.", "error_code": "EGW00121"})
        token = await self.token()
        body = {"appkey": APP_KEY, "appsecret": APP_SECRET, "token": token}
        self.assertEqual((await self.http.post(T.REVOKE_PATH, json=body)).status_code, 200)
        second = await self.http.post(T.REVOKE_PATH, json=body)
        self.assertEqual(second.status_code, 403)
        self.assertEqual(second.json()["error_code"], "EGW00121")


class ApprovalTest(RestCase):
    async def test_secretkey_gives_36_char_key_each_time(self) -> None:
        keys = []
        for _ in range(3):
            r = await self.http.post(T.APPROVAL_PATH, json={"grant_type": "client_credentials",
                                                            "appkey": APP_KEY, "secretkey": APP_SECRET})
            self.assertEqual(r.status_code, 200, r.text)
            self.assertEqual(r.headers["content-type"], JSON_TYPE)
            self.assertEqual(list(r.json()), ["approval_key"])
            key = r.json()["approval_key"]
            self.assertEqual(len(key), 36)
            self.assertEqual(str(uuid.UUID(key)), key)
            keys.append(key)
        self.assertEqual(len(set(keys)), 3)  # a fresh key per call, no issuance limit
        self.assertEqual((await self.stats())["approval_keys"], 3)

    async def test_appsecret_key_name_is_rejected(self) -> None:
        r = await self.http.post(T.APPROVAL_PATH, json={"grant_type": "client_credentials", "appkey": APP_KEY,
                                                        "appsecret": APP_SECRET})
        self.assertEqual(r.status_code, 403, r.text)
        self.assertNotIn("approval_key", r.json())
        self.assertEqual(r.json()["error_code"], "EGW00104")
        self.assertEqual((await self.stats())["approval_keys"], 0)


class HashkeyTest(RestCase):
    async def test_hashkey_returns_hash_without_token(self) -> None:
        body = {"CANO": "12345678", "ACNT_PRDT_CD": "01", "PDNO": "005930", "ORD_DVSN": "01",
                "ORD_QTY": "1", "ORD_UNPR": "0"}
        headers = {"content-type": JSON_TYPE, "appkey": APP_KEY, "appsecret": APP_SECRET}
        r = await self.http.post(T.HASHKEY_PATH, json=body, headers=headers)
        self.assertEqual(r.status_code, 200, r.text)
        first = r.json()["HASH"]
        self.assertRegex(first, r"^[0-9a-f]{64}$")
        again = (await self.http.post(T.HASHKEY_PATH, json=body, headers=headers)).json()["HASH"]
        self.assertEqual(again, first)
        other = (await self.http.post(T.HASHKEY_PATH, json={**body, "ORD_QTY": "2"}, headers=headers)).json()
        self.assertNotEqual(other["HASH"], first)

    async def test_hashkey_needs_app_key(self) -> None:
        r = await self.http.post(T.HASHKEY_PATH, json={"A": "1"}, headers={"appsecret": APP_SECRET})
        self.assert_envelope(r, 500, "1", "EGW00102", "AppKey는 필수입니다.")


class TokenExpiryTest(RestCase):
    async def test_expired_token_is_http_500_egw00123(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS, headers=headers)
        self.assertEqual(r.json()["rt_cd"], "0")
        expired = await self.admin("POST", "/tokens/expire")
        self.assertEqual(expired, {"expired": 1})
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS, headers=headers)
        self.assert_envelope(r, 500, "1", "EGW00123", "기간이 만료된 token 입니다.")
        self.assertEqual(r.headers["tr_id"], T.INQUIRE_PRICE)
        # A client that re-issues gets a fresh, working token.
        fresh = await oauth_token(self.http)
        self.assertEqual(fresh.status_code, 200, fresh.text)
        self.assertNotEqual(fresh.json()["access_token"], self._token)
        self._token = fresh.json()["access_token"]
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS,
                                headers=await self.headers(T.INQUIRE_PRICE))
        self.assertEqual(r.json()["rt_cd"], "0", r.text)
        self.assertEqual((await self.stats())["rest_errors"].get("EGW00123"), 1)


    async def test_token_expires_after_24_hours_of_sim_time(self) -> None:
        headers = await self.headers(T.INQUIRE_PRICE)
        await self.admin("POST", "/clock", {"advance_s": 24 * 3600 - 60})
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS, headers=headers)
        self.assertEqual(r.json()["rt_cd"], "0", r.text)  # still inside its life
        await self.admin("POST", "/clock", {"advance_s": 61})
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params=QUOTE_PARAMS, headers=headers)
        self.assert_envelope(r, 500, "1", "EGW00123", "기간이 만료된 token 입니다.")


if __name__ == "__main__":
    unittest.main()
