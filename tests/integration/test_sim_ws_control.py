"""WebSocket control-plane conformance (reference §6.1, §6.2, §6.5): ACKs, OPSP codes, sessions."""

from __future__ import annotations

import json
import string
import unittest

from kis_testing import APP_KEY, subscribe_msg

from .ws_support import WsTestCase, recv_closed, recv_control, recv_data


class SubscribeAckTest(WsTestCase):
    async def test_subscribe_ack_exact_shape(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            for tr_id, tr_key in (("H0STCNT0", "005930"), ("H0STASP0", "005930"), ("HDFSCNT0", "DNASAAPL")):
                with self.subTest(tr_id=tr_id):
                    ack = await self.subscribe(ws, approval, tr_id, tr_key)
                    self.assertEqual(set(ack), {"header", "body"})
                    self.assertEqual(ack["header"], {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"})
                    body = ack["body"]
                    self.assertEqual(set(body), {"rt_cd", "msg_cd", "msg1", "output"})
                    self.assertEqual((body["rt_cd"], body["msg_cd"], body["msg1"]),
                                     ("0", "OPSP0000", "SUBSCRIBE SUCCESS"))
                    self.assertEqual(set(body["output"]), {"iv", "key"})
                    iv, key = body["output"]["iv"], body["output"]["key"]
                    self.assertEqual(len(iv), 16)
                    self.assertEqual(len(key), 32)
                    printable = set(string.ascii_letters + string.digits)
                    self.assertLessEqual(set(iv + key), printable)

    async def test_ack_is_valid_utf8_json_text(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await ws.send(subscribe_msg(approval, "H0STCNT0", "000660"))
            raw = await ws.recv()
            self.assertIsInstance(raw, str)
            self.assertTrue(raw.startswith("{"), raw)
            self.assertEqual(json.loads(raw)["header"]["tr_key"], "000660")

    async def test_any_ws_path_is_accepted(self) -> None:
        for i, path in enumerate(("", "/", "/tryitout", "/tryitout/H0STCNT0", "/some/other/path")):
            with self.subTest(path=path):
                # A distinct app key per connection: one session per app key is a separate rule.
                app_key = f"PSpath{i}" + "y" * 30
                approval = await self.approval_key(app_key=app_key)
                async with self.ws_connect(path) as ws:
                    await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
                    frame = await recv_data(ws, "H0STCNT0")
                    self.assertEqual(frame.tr_id, "H0STCNT0")

    async def test_extra_header_keys_are_tolerated(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await ws.send(json.dumps({
                "header": {"approval_key": approval, "custtype": "P", "tr_type": "1", "content-type": "utf-8",
                           "personalseckey": "1"},
                "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}}))
            ack = await recv_control(ws)
            self.assertEqual(ack["body"]["msg_cd"], "OPSP0000")


class SubscriptionRulesTest(WsTestCase):
    async def test_duplicate_subscribe_is_already_in_subscribe(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            ack = await self.subscribe(ws, approval, "H0STCNT0", "005930")
            self.assertEqual(ack["header"]["tr_id"], "H0STCNT0")
            self.assertEqual(ack["header"]["tr_key"], "005930")
            self.assertEqual(ack["body"]["rt_cd"], "1")
            self.assertEqual(ack["body"]["msg_cd"], "OPSP0002")
            self.assertEqual(ack["body"]["msg1"], "ALREADY IN SUBSCRIBE")
            # Not fatal: the session goes on and keeps the one registration.
            await recv_data(ws, "H0STCNT0")
            session = await self.only_session()
            self.assertEqual(session["subscriptions"], ["H0STCNT0:005930"])

    async def test_same_key_on_another_tr_is_a_new_registration(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await self.subscribe_ok(ws, approval, "H0STASP0", "005930")
            session = await self.only_session()
            self.assertEqual(session["subscriptions"], ["H0STASP0:005930", "H0STCNT0:005930"])

    async def test_unsubscribe_ack_and_resubscribe(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            ack = await self.subscribe(ws, approval, "H0STCNT0", "005930", tr_type="2")
            self.assertEqual(ack["header"], {"tr_id": "H0STCNT0", "tr_key": "005930", "encrypt": "N"})
            self.assertEqual(ack["body"]["rt_cd"], "0")
            self.assertEqual(ack["body"]["msg_cd"], "OPSP0001")
            self.assertTrue(ack["body"]["msg1"].startswith("UNSUB"), ack)  # how OTA:auth detects it
            self.assertEqual(ack["body"]["msg1"], "UNSUBSCRIBE SUCCESS")
            self.assertEqual((await self.only_session())["subscriptions"], [])
            # The slot is free again: subscribing once more succeeds (not OPSP0002).
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")

    async def test_unsubscribe_of_not_subscribed_key(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            ack = await self.subscribe(ws, approval, "H0STCNT0", "005930", tr_type="2")
            self.assertEqual(ack["header"]["tr_id"], "H0STCNT0")
            self.assertEqual(ack["header"]["tr_key"], "005930")
            self.assertEqual(ack["body"]["rt_cd"], "1")
            self.assertEqual(ack["body"]["msg_cd"], "OPSP0003")
            self.assertEqual(ack["body"]["msg1"], "UNSUBSCRIBE ERROR(not found!)")
            # A second unsubscribe after a real one is also "not found".
            await self.subscribe_ok(ws, approval, "H0STASP0", "000660")
            first = await self.subscribe(ws, approval, "H0STASP0", "000660", tr_type="2")
            self.assertEqual(first["body"]["msg_cd"], "OPSP0001")
            again = await self.subscribe(ws, approval, "H0STASP0", "000660", tr_type="2")
            self.assertEqual(again["body"]["msg_cd"], "OPSP0003")

    async def test_41_registrations_then_max_subscribe_over(self) -> None:
        codes = sorted(c for c in self.sim.market.krx)[:20]
        self.assertEqual(len(codes), 20)
        pairs = [(tr, code) for code in codes for tr in ("H0STCNT0", "H0STASP0")]
        pairs.append(("H0STCNT0", "999990"))  # unknown but well-formed code: accepted
        self.assertEqual(len(set(pairs)), 41)
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            for tr_id, tr_key in pairs:
                ack = await self.subscribe(ws, approval, tr_id, tr_key)
                self.assertEqual(ack["body"]["msg_cd"], "OPSP0000", (tr_id, tr_key, ack))
            ack = await self.subscribe(ws, approval, "H0STCNT0", "999991")
            self.assertEqual(ack["header"]["tr_id"], "H0STCNT0")
            self.assertEqual(ack["header"]["tr_key"], "999991")
            self.assertEqual(ack["body"]["msg_cd"], "OPSP0008")
            self.assertEqual(ack["body"]["msg1"], "MAX SUBSCRIBE OVER")
            self.assertIn(ack["body"]["rt_cd"], ("1", "9"))  # [CONFLICT] in the sources; never "0"
            # A notice TR counts against the same limit.
            notice = await self.subscribe(ws, approval, "H0STCNI0", "HTSUSER1")
            self.assertEqual(notice["body"]["msg_cd"], "OPSP0008")
            session = await self.only_session()
            self.assertEqual(len(session["subscriptions"]), 41)
            # Freeing one slot makes room for exactly one more.
            unsub = await self.subscribe(ws, approval, "H0STCNT0", "999990", tr_type="2")
            self.assertEqual(unsub["body"]["msg_cd"], "OPSP0001")
            await self.subscribe_ok(ws, approval, "H0STCNT0", "999991")
            again = await self.subscribe(ws, approval, "H0STCNT0", "999992")
            self.assertEqual(again["body"]["msg_cd"], "OPSP0008")

    async def test_unknown_six_digit_code_is_accepted(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            ack = await self.subscribe_ok(ws, approval, "H0STCNT0", "123450")
            self.assertEqual(ack["header"]["tr_key"], "123450")
            ack = await self.subscribe_ok(ws, approval, "H0STASP0", "123450")
            self.assertEqual(ack["header"]["tr_id"], "H0STASP0")


class MalformedRequestTest(WsTestCase):
    async def test_invalid_approval_key(self) -> None:
        async with self.ws_connect() as ws:
            ack = await self.subscribe(ws, "a2585daf-8c09-4587-9fce-8ab893XXXXXX", "H0STCNT0", "005930")
            self.assertEqual(ack, {
                "header": {"tr_id": "H0STCNT0", "tr_key": "005930", "encrypt": "N"},
                "body": {"rt_cd": "1", "msg_cd": "OPSP0011",
                         "msg1": "invalid approval : a2585daf-8c09-4587-9fce-8ab893XXXXXX"},
            })
            # The socket stays usable: a valid key subscribes.
            await self.subscribe_ok(ws, await self.approval_key(), "H0STCNT0", "005930")

    async def test_error_codes_for_malformed_messages(self) -> None:
        approval = await self.approval_key()
        good_header = {"approval_key": approval, "custtype": "P", "tr_type": "1", "content-type": "utf-8"}
        parse_error = ("(null)", "9", "OPSP9999", "JSON PARSING ERROR : invalid json format")
        cases: list[tuple[str, str, tuple[str, str, str, str]]] = [
            ("not json", "{not json", parse_error),
            ("json array", "[1, 2]", parse_error),
            ("no header", json.dumps({"body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}}),
             ("(null)", "9", "OPSP9998", "MISSING HEADER")),
            ("no body", json.dumps({"header": good_header}), ("(null)", "9", "OPSP9992", "MISSING BODY")),
            ("no input", json.dumps({"header": good_header, "body": {}}),
             ("(null)", "9", "OPSP9991", "MISSING INPUT")),
            ("no tr_key", json.dumps({"header": good_header, "body": {"input": {"tr_id": "H0STCNT0"}}}),
             ("H0STCNT0", "9", "OPSP9990", "MISSING TR_KEY")),
            ("bad tr_type", json.dumps({"header": {**good_header, "tr_type": "0"},
                                        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}}),
             ("H0STCNT0", "9", "OPSP8997", "invalid tr_type")),
            ("unknown tr_id", json.dumps({"header": good_header,
                                          "body": {"input": {"tr_id": "H0XXXXX0", "tr_key": "005930"}}}),
             ("H0XXXXX0", "9", "OPSP0007", "invalid tr_id")),
            ("empty tr_key", json.dumps({"header": good_header,
                                         "body": {"input": {"tr_id": "H0STCNT0", "tr_key": ""}}}),
             ("H0STCNT0", "1", "OPSP0003", "MANDATORY INPUT MISSING")),
        ]
        async with self.ws_connect() as ws:
            for name, text, (tr_id, rt_cd, msg_cd, msg1) in cases:
                with self.subTest(name):
                    await ws.send(text)
                    ack = await recv_control(ws)
                    self.assertEqual(ack["header"]["tr_id"], tr_id)
                    self.assertEqual(ack["header"]["encrypt"], "N")
                    self.assertEqual(ack["body"], {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1})
            # None of these killed the session or registered anything.
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            self.assertEqual((await self.only_session())["subscriptions"], ["H0STCNT0:005930"])


class OneSessionPerAppKeyTest(WsTestCase):
    async def test_second_session_gets_opsp8996_and_is_closed(self) -> None:
        first_approval = await self.approval_key()
        second_approval = await self.approval_key()
        self.assertNotEqual(first_approval, second_approval)  # a fresh key per call, same app key
        async with self.ws_connect() as first:
            await self.subscribe_ok(first, first_approval, "H0STCNT0", "005930")
            await recv_data(first, "H0STCNT0")
            async with self.ws_connect("/tryitout/H0STCNT0") as second:
                await second.send(subscribe_msg(second_approval, "H0STCNT0", "000660"))
                rejection = await recv_control(second)
                self.assertEqual(rejection, {
                    "header": {"tr_id": "(null)", "tr_key": "", "encrypt": "N"},
                    "body": {"rt_cd": "9", "msg_cd": "OPSP8996", "msg1": "ALREADY IN USE appkey"},
                })
                await recv_closed(second)
            # The first session is untouched: still registered, still receiving.
            for _ in range(3):
                frame = await recv_data(first, "H0STCNT0")
                self.assertEqual(frame.payload.split("^", 1)[0], "005930")
            await self.wait_for_sessions(1)
            session = await self.only_session()
            self.assertEqual(session["subscriptions"], ["H0STCNT0:005930"])
            self.assertEqual(session["app_key_tail"], APP_KEY[-4:])
            self.assertEqual((await self.ws_stats())["counters"].get("appkey_in_use"), 1)

    async def test_other_app_key_gets_its_own_session(self) -> None:
        other_key = "PSother" + "z" * 29
        async with self.ws_connect() as first, self.ws_connect() as second:
            await self.subscribe_ok(first, await self.approval_key(), "H0STCNT0", "005930")
            await self.subscribe_ok(second, await self.approval_key(app_key=other_key), "H0STCNT0", "005930")
            await recv_data(first, "H0STCNT0")
            await recv_data(second, "H0STCNT0")

    async def test_app_key_is_free_again_after_a_clean_close(self) -> None:
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, await self.approval_key(), "H0STCNT0", "005930")
        await self.wait_for_sessions(0)
        async with self.ws_connect() as ws:
            ack = await self.subscribe_ok(ws, await self.approval_key(), "H0STCNT0", "005930")
            self.assertEqual(ack["header"]["tr_key"], "005930")  # subscriptions are not remembered


if __name__ == "__main__":
    unittest.main()
