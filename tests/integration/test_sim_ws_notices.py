"""Execution-notice conformance (reference §6.4.3): encrypted ACK, AES frames, the 26-field record."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import unittest
from pathlib import Path
from typing import Any

from kis.sim.engine import SimConfig
from kis_testing import APP_KEY, APP_SECRET, CANO, PRDT, subscribe_msg

from .ws_support import N_H0STCNI0, WsTestCase, aes_decrypt, krx_tick, on_krx_grid, recv_closed, recv_data

HTS_ID = "HTSUSER1"
ORDER_CASH = "/uapi/domestic-stock/v1/trading/order-cash"
ORDER_RVSECNCL = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
FRAME = re.compile(r"1\|H0STCNI[09]\|001\|[A-Za-z0-9+/]+={0,2}")

# Field positions (26-field layout, reference §6.4.3).
CUST_ID, ACNT_NO, ODER_NO, OODER_NO, SELN_BYOV_CLS, RCTF_CLS, ODER_KIND, ODER_COND = range(8)
STCK_SHRN_ISCD, CNTG_QTY, CNTG_UNPR, STCK_CNTG_HOUR, RFUS_YN, CNTG_YN, ACPT_YN, BRNC_NO = range(8, 16)
ODER_QTY, ACNT_NAME, ORD_COND_PRC, ORD_EXG_GB, POPUP_YN, FILLER, CRDT_CLS, CRDT_LOAN_DATE = range(16, 24)
CNTG_ISNM40, ODER_PRC = 24, 25


class NoticeCase(WsTestCase):
    notice_tr = "H0STCNI0"
    buy_tr = "TTTC0012U"
    cancel_tr = "TTTC0013U"

    def sim_config(self) -> SimConfig:
        # A small per-step liquidity so a market order fills in several pieces.
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.02, fill_liquidity=3)

    async def post(self, path: str, tr_id: str, body: dict[str, str]) -> dict[str, Any]:
        r = await self.http.post(path, json=body, headers=await self.headers(tr_id))
        self.assertEqual(r.status_code, 200, r.text)
        answer: dict[str, Any] = r.json()
        self.assertEqual(answer["rt_cd"], "0", answer)
        return answer

    async def buy(self, code: str, qty: int, dvsn: str = "01", price: int = 0) -> str:
        answer = await self.post(ORDER_CASH, self.buy_tr, {
            "CANO": CANO, "ACNT_PRDT_CD": PRDT, "PDNO": code, "ORD_DVSN": dvsn, "ORD_QTY": str(qty),
            "ORD_UNPR": str(price)})
        odno: str = answer["output"]["ODNO"]
        return odno

    async def notice_ack(self, ws: Any, approval: str) -> tuple[str, str]:
        ack = await self.subscribe(ws, approval, self.notice_tr, HTS_ID)
        self.assertEqual(ack["header"], {"tr_id": self.notice_tr, "tr_key": HTS_ID, "encrypt": "Y"})
        self.assertEqual({k: ack["body"][k] for k in ("rt_cd", "msg_cd", "msg1")},
                         {"rt_cd": "0", "msg_cd": "OPSP0000", "msg1": "SUBSCRIBE SUCCESS"})
        key, iv = ack["body"]["output"]["key"], ack["body"]["output"]["iv"]
        self.assertEqual((len(key), len(iv)), (32, 16))
        return key, iv

    async def next_notice(self, ws: Any, key: str, iv: str) -> list[str]:
        frame = await recv_data(ws, self.notice_tr)
        raw = f"{frame.enc}|{frame.tr_id}|{frame.count}|{frame.payload}"
        self.assertRegex(raw, FRAME)
        self.assertEqual(frame.count, "001")
        plain = aes_decrypt(frame.payload, key, iv)
        fields = plain.split("^")
        self.assertEqual(len(fields), N_H0STCNI0, plain)
        self.check_common(fields)
        return fields

    def check_common(self, f: list[str]) -> None:
        self.assertEqual(f[CUST_ID], HTS_ID)
        self.assertEqual(f[ACNT_NO], CANO + PRDT)
        self.assertRegex(f[ODER_NO], re.compile(r"\d{10}"))
        self.assertRegex(f[OODER_NO], re.compile(r"(\d{10})?"))
        self.assertIn(f[SELN_BYOV_CLS], ("01", "02"))
        self.assertIn(f[RCTF_CLS], ("0", "1", "2"))
        self.assertRegex(f[ODER_KIND], re.compile(r"\d{2}"))
        self.assertIn(f[ODER_COND], ("0", "1", "2"))
        self.assertRegex(f[CNTG_QTY], re.compile(r"\d{10}"))
        self.assertRegex(f[CNTG_UNPR], re.compile(r"\d{9}"))
        self.assertRegex(f[STCK_CNTG_HOUR], re.compile(r"([01]\d|2[0-3])[0-5]\d[0-5]\d"))
        self.assertIn(f[RFUS_YN], ("0", "1"))
        self.assertIn(f[CNTG_YN], ("1", "2"))
        self.assertIn(f[ACPT_YN], ("1", "2", "3"))
        self.assertRegex(f[BRNC_NO], re.compile(r"\d{5}"))
        self.assertRegex(f[ODER_QTY], re.compile(r"\d{9}"))
        self.assertIn(f[ORD_EXG_GB], ("1", "2", "3", "4"))
        self.assertIn(f[POPUP_YN], ("Y", "N"))
        self.assertRegex(f[ODER_PRC], re.compile(r"\d{9}"))

    async def connect_notices(self) -> tuple[Any, str, str]:
        approval = await self.approval_key()
        ws = await self.ws_connect().__aenter__()
        self.addAsyncCleanup(ws.close)
        key, iv = await self.notice_ack(ws, approval)
        return ws, key, iv


class LiveNoticeTest(NoticeCase):
    async def test_market_buy_ack_then_fills(self) -> None:
        ws, key, iv = await self.connect_notices()
        odno = await self.buy("005930", 10)
        self.assertRegex(odno, re.compile(r"\d{10}"))
        ack = await self.next_notice(ws, key, iv)
        self.assertEqual(ack[CNTG_YN], "1", "the first notice is the order acknowledgment")
        self.assertEqual(ack[ODER_NO], odno)
        self.assertEqual(ack[OODER_NO], "")
        self.assertEqual(ack[SELN_BYOV_CLS], "02")
        self.assertEqual(ack[RCTF_CLS], "0")
        self.assertEqual(ack[ODER_KIND], "01")
        self.assertEqual(ack[STCK_SHRN_ISCD], "005930")
        self.assertEqual(ack[CNTG_QTY], "0000000010")  # ack: 주문수량
        self.assertEqual(ack[ODER_QTY], "000000010")
        self.assertEqual(ack[RFUS_YN], "0")
        self.assertEqual(ack[CNTG_ISNM40], "삼성전자")  # UTF-8 through AES
        filled, fills = 0, 0
        while filled < 10:
            fill = await self.next_notice(ws, key, iv)
            self.assertEqual(fill[CNTG_YN], "2", fill)
            self.assertEqual(fill[ODER_NO], odno)
            self.assertEqual(fill[RCTF_CLS], "0")
            self.assertEqual(fill[ODER_QTY], "000000010")
            qty, unpr = int(fill[CNTG_QTY]), int(fill[CNTG_UNPR])
            self.assertGreater(qty, 0)
            self.assertTrue(on_krx_grid(unpr), unpr)
            self.assertEqual(fill[CNTG_UNPR], f"{unpr:09d}")
            filled += qty
            fills += 1
        self.assertEqual(filled, 10, "fills add up to the order quantity")
        self.assertGreater(fills, 1, "with 3 shares of liquidity per step a 10-share order fills in pieces")
        balance = await self.admin("GET", f"/accounts/{CANO}-{PRDT}")
        self.assertEqual(balance["holdings"]["005930"]["qty"], 10)

    async def test_limit_order_cancel_emits_rctf_cls_2(self) -> None:
        ws, key, iv = await self.connect_notices()
        info = await self.admin("GET", "/market/005930")
        price = info["lower"]  # far below the market: rests without filling
        self.assertTrue(on_krx_grid(price))
        odno = await self.buy("005930", 7, dvsn="00", price=price)
        ack = await self.next_notice(ws, key, iv)
        self.assertEqual((ack[CNTG_YN], ack[RCTF_CLS], ack[ODER_NO]), ("1", "0", odno))
        self.assertEqual(ack[ODER_KIND], "00")
        self.assertEqual(ack[CNTG_QTY], "0000000007")
        self.assertEqual(int(ack[CNTG_UNPR]), price)  # ack: 주문가격
        answer = await self.post(ORDER_RVSECNCL, self.cancel_tr, {
            "CANO": CANO, "ACNT_PRDT_CD": PRDT, "KRX_FWDG_ORD_ORGNO": "06010", "ORGN_ODNO": odno,
            "ORD_DVSN": "00", "RVSE_CNCL_DVSN_CD": "02", "ORD_QTY": "0", "ORD_UNPR": "0",
            "QTY_ALL_ORD_YN": "Y"})
        cancel_no = answer["output"]["ODNO"]
        cancel = await self.next_notice(ws, key, iv)
        self.assertEqual(cancel[CNTG_YN], "1")
        self.assertEqual(cancel[RCTF_CLS], "2")
        self.assertEqual(cancel[ODER_NO], cancel_no)
        self.assertEqual(cancel[OODER_NO], odno)
        self.assertEqual(cancel[CNTG_QTY], "0000000007")
        self.assertEqual(cancel[ODER_QTY], "000000007")
        self.assertEqual(cancel[STCK_SHRN_ISCD], "005930")

    async def test_notice_key_works_for_every_frame_and_quotes_stay_plain(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            key, iv = await self.notice_ack(ws, approval)
            quote_ack = await self.subscribe_ok(ws, approval, "H0STCNT0", "136480")
            self.assertEqual(quote_ack["header"]["encrypt"], "N")
            odno = await self.buy("136480", 2)
            ack = await self.next_notice(ws, key, iv)
            self.assertEqual(ack[ODER_NO], odno)
            self.assertEqual(ack[CNTG_ISNM40], "하림")
            fill = await self.next_notice(ws, key, iv)  # 2 shares fill at once against the book
            self.assertEqual(fill[CNTG_YN], "2")
            self.assertEqual(fill[CNTG_QTY], "0000000002")
            unpr = int(fill[CNTG_UNPR])
            self.assertEqual(unpr % krx_tick(unpr), 0)
            quote = await recv_data(ws, "H0STCNT0")
            self.assertEqual(quote.enc, "0")
            self.assertTrue(quote.payload.startswith("136480^"))

    async def test_notice_resubscribe_and_unsubscribe(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.notice_ack(ws, approval)
            again = await self.subscribe(ws, approval, "H0STCNI0", HTS_ID)
            self.assertEqual(again["header"], {"tr_id": "H0STCNI0", "tr_key": HTS_ID, "encrypt": "Y"})
            self.assertEqual(again["body"]["msg_cd"], "OPSP0002")
            unsub = await self.subscribe(ws, approval, "H0STCNI0", HTS_ID, tr_type="2")
            self.assertEqual(unsub["header"], {"tr_id": "H0STCNI0", "tr_key": HTS_ID, "encrypt": "Y"})
            self.assertEqual((unsub["body"]["rt_cd"], unsub["body"]["msg_cd"]), ("0", "OPSP0001"))
            self.assertTrue(unsub["body"]["msg1"].startswith("UNSUB"))
            gone = await self.subscribe(ws, approval, "H0STCNI0", HTS_ID, tr_type="2")
            self.assertEqual(gone["header"]["encrypt"], "Y")
            self.assertEqual(gone["body"]["msg_cd"], "OPSP0003")
            # No more notices: an order's ack would be queued before the next quote frames.
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await self.buy("005930", 1)
            for _ in range(5):
                frame = await recv_data(ws)
                self.assertEqual((frame.enc, frame.tr_id), ("0", "H0STCNT0"))

    async def test_quote_only_session_gets_no_notices(self) -> None:
        approval = await self.approval_key()
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, approval, "H0STCNT0", "005930")
            await self.buy("005930", 1)
            # Market steps go on; a notice would arrive within the same step as the order.
            for _ in range(10):
                frame = await recv_data(ws)
                self.assertEqual(frame.tr_id, "H0STCNT0")
                self.assertEqual(frame.enc, "0")


class PaperNoticeTest(NoticeCase):
    notice_tr = "H0STCNI9"
    buy_tr = "VTTC0012U"
    cancel_tr = "VTTC0013U"

    def sim_config(self) -> SimConfig:
        return SimConfig(paper=True, token_min_interval_s=60.0, tick_interval_s=0.02, fill_liquidity=4)

    async def test_paper_market_buy_notices(self) -> None:
        ws, key, iv = await self.connect_notices()
        odno = await self.buy("000660", 9)
        ack = await self.next_notice(ws, key, iv)
        self.assertEqual((ack[CNTG_YN], ack[ODER_NO], ack[ODER_QTY]), ("1", odno, "000000009"))
        filled = 0
        while filled < 9:
            fill = await self.next_notice(ws, key, iv)
            self.assertEqual((fill[CNTG_YN], fill[ODER_NO]), ("2", odno))
            filled += int(fill[CNTG_QTY])
        self.assertEqual(filled, 9)


class HtsIdTest(NoticeCase):
    """With a credentials file naming the HTS ID, a wrong tr_key drops the socket (reference §6.1)."""

    def sim_config(self) -> SimConfig:
        folder = Path(tempfile.mkdtemp(prefix="kis-sim-creds-"))
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        creds = folder / "apps.json"
        app = {"app_key": APP_KEY, "app_secret": APP_SECRET, "hts_id": HTS_ID}
        creds.write_text(json.dumps({"apps": [app]}))
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.02, credentials_file=creds)

    async def test_wrong_hts_id_drops_the_socket(self) -> None:
        async with self.ws_connect() as ws:
            await self.subscribe_ok(ws, await self.approval_key(), "H0STCNT0", "005930")
            await ws.send(subscribe_msg(await self.approval_key(), "H0STCNI0", "NOTME99"))
            closed = await recv_closed(ws)
            self.assertIsNone(closed.rcvd, "dropped without a close frame")
            self.assertEqual(ws.close_code, 1006)

    async def test_right_hts_id_subscribes(self) -> None:
        ws, key, iv = await self.connect_notices()
        odno = await self.buy("005930", 1)
        ack = await self.next_notice(ws, key, iv)
        self.assertEqual(ack[ODER_NO], odno)


if __name__ == "__main__":
    unittest.main()
