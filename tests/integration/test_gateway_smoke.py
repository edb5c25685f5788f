import unittest

from kis_testing import GatewayTestCase, wait_until


class GatewaySmokeTest(GatewayTestCase):
    async def test_quote_from_ws(self) -> None:
        async def streaming() -> bool:
            return (await self.quote_metrics())["ws_messages"] > 0

        await wait_until(streaming, 10, message="ws messages")
        r = await self.gw.get("/v1/quotes/005930")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["source"], "kis-ws")


if __name__ == "__main__":
    unittest.main()
