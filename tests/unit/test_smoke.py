import unittest

from kis_testing import SimTestCase, subscribe_msg


class SimSmokeTest(SimTestCase):
    async def test_token_then_quote(self) -> None:
        r = await self.http.get("/uapi/domestic-stock/v1/quotations/inquire-price",
                                params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"},
                                headers=await self.headers("FHKST01010100"))
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["rt_cd"], "0")

    async def test_ws_ack(self) -> None:
        key = await self.approval_key()
        async with self.ws_connect() as ws:
            await ws.send(subscribe_msg(key, "H0STCNT0", "005930"))
            ack = await ws.recv()
            self.assertIn("OPSP0000", ack)


if __name__ == "__main__":
    unittest.main()
