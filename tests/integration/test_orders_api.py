"""POST /v1/orders and friends against the simulator over real sockets (SQLite)."""

import asyncio
import unittest
from typing import Any

from kis_testing import CANO, PRDT, GatewayTestCase, wait_until

ORDER = {"account_id": "A1", "symbol": "005930", "side": "BUY", "qty": 1}
ORDER_TRS = ("TTTC0012U", "TTTC0011U", "TTTC0013U", "TTTC0802U", "TTTC0801U", "TTTC0803U")


class OrderCase(GatewayTestCase):
    kill_switch_off = True

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.trading = self.runtime.trading
        if self.kill_switch_off:
            await self.trading.kill_switch.set(False, "tests: simulator only", "test-suite")

    async def post(self, body: Any, key: str | None = "k1", **headers: str) -> Any:
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.gw.post("/v1/orders", json=body, headers=headers)

    async def broker_order_calls(self) -> int:
        stats = await self.admin("GET", "/stats")
        return sum(stats["rest_calls"].get(tr, 0) for tr in ORDER_TRS)

    async def wait_status(self, order_id: str, *statuses: str, timeout: float = 10.0  # noqa: ASYNC109
                          ) -> dict[str, Any]:
        result: dict[str, Any] = {}

        async def reached() -> bool:
            r = await self.gw.get(f"/v1/orders/{order_id}")
            result.update(r.json())
            return r.json()["status"] in statuses

        await wait_until(reached, timeout, message=f"order {order_id} in {statuses}")
        return result

    def assert_error(self, r: Any, status: int, code: str) -> None:
        self.assertEqual(r.status_code, status, r.text)
        body = r.json()
        self.assertEqual(body["code"], code, body)
        self.assertIsInstance(body["message"], str)
        self.assertIsInstance(body["retryable"], bool)


class KillSwitchDefaultTest(OrderCase):
    kill_switch_off = False

    async def test_no_row_means_active_and_no_broker_call(self) -> None:
        r = await self.post(ORDER)
        self.assert_error(r, 403, "KILL_SWITCH_ACTIVE")
        self.assertEqual(await self.broker_order_calls(), 0)
        status = (await self.gw.get("/v1/kill-switch")).json()
        self.assertEqual(status["kill_switch"], "ACTIVE")

    async def test_switch_on_again_stops_orders(self) -> None:
        await self.trading.kill_switch.set(False, "open", "ops")
        r = await self.post(ORDER, key="a")
        self.assertEqual(r.status_code, 201, r.text)
        await self.trading.kill_switch.set(True, "stop everything", "ops")
        r = await self.post({**ORDER, "qty": 2}, key="b")
        self.assert_error(r, 403, "KILL_SWITCH_ACTIVE")
        await self.wait_status((await self.post(ORDER, key="a")).json()["order_id"], "FILLED", "ACCEPTED")
        self.assertLessEqual(await self.broker_order_calls(), 1)


class PlaceOrderTest(OrderCase):
    async def test_seed_quick_check_order_fills(self) -> None:
        r = await self.post(ORDER, key="sample-k1")
        self.assertEqual(r.status_code, 201, r.text)
        body = r.json()
        self.assertEqual(set(body), {"order_id", "status", "idempotency_key"})
        self.assertEqual(body["idempotency_key"], "sample-k1")
        order = await self.wait_status(body["order_id"], "FILLED")
        self.assertEqual(order["filled_qty"], 1)
        self.assertEqual(order["order_type"], "MARKET")
        self.assertNotIn(CANO, str(order))
        account = await self.admin("GET", f"/accounts/{CANO}-{PRDT}")
        self.assertEqual(account["holdings"]["005930"]["qty"], 1)
        self.assertEqual(len(account["orders"]), 1)

    async def test_replay_and_mismatch(self) -> None:
        first = await self.post(ORDER, key="same")
        again = await self.post(ORDER, key="same")
        self.assertEqual(first.status_code, again.status_code)
        self.assertEqual(first.json(), again.json())
        other = await self.post({**ORDER, "qty": 2}, key="same")
        self.assert_error(other, 409, "IDEMPOTENCY_KEY_BODY_MISMATCH")
        metrics = (await self.gw.get("/v1/metrics/order")).json()
        self.assertEqual(metrics["idempotent_replays"], 1)
        await self.wait_status(first.json()["order_id"], "FILLED")
        self.assertEqual(await self.broker_order_calls(), 1)

    async def test_hundred_concurrent_posts_one_key_one_order(self) -> None:
        results = await asyncio.gather(*(self.post(ORDER, key="burst") for _ in range(100)))
        ids = {r.json()["order_id"] for r in results if r.status_code == 201}
        self.assertEqual([r.status_code for r in results], [201] * 100)
        self.assertEqual(len(ids), 1)
        await self.wait_status(ids.pop(), "FILLED")
        self.assertEqual(await self.broker_order_calls(), 1)
        account = await self.admin("GET", f"/accounts/{CANO}-{PRDT}")
        self.assertEqual(len(account["orders"]), 1)

    async def test_validation_codes(self) -> None:
        cases = [
            ({**ORDER, "qty": 0}, 400, "INVALID_QTY"),
            ({**ORDER, "qty": -3}, 400, "INVALID_QTY"),
            ({**ORDER, "qty": "abc"}, 400, "INVALID_QTY"),
            ({**ORDER, "qty": 1.5}, 400, "INVALID_QTY"),
            ({**ORDER, "side": "HOLD"}, 400, "INVALID_SIDE"),
            ({**ORDER, "order_type": "STOP"}, 400, "INVALID_ORDER_TYPE"),
            ({**ORDER, "order_type": "LIMIT"}, 400, "PRICE_REQUIRED_FOR_LIMIT"),
            ({**ORDER, "order_type": "MARKET", "price": 70000}, 400, "PRICE_NOT_ALLOWED_FOR_MARKET"),
            ({**ORDER, "price": 71950}, 400, "INVALID_PRICE"),
            ({**ORDER, "price": 0}, 400, "INVALID_PRICE"),
            ({**ORDER, "symbol": "ABC"}, 400, "INVALID_SYMBOL"),
            ({**ORDER, "account_id": "ZZ"}, 404, "ACCOUNT_NOT_FOUND"),
            ({**ORDER, "account_id": "99999999-01"}, 404, "ACCOUNT_NOT_FOUND"),
        ]
        for i, (body, status, code) in enumerate(cases):
            with self.subTest(code=code, body=body):
                self.assert_error(await self.post(body, key=f"v{i}"), status, code)
        self.assert_error(await self.post(ORDER, key=None), 400, "IDEMPOTENCY_KEY_REQUIRED")
        r = await self.gw.post("/v1/orders", content=b"{not json", headers={"Idempotency-Key": "j"})
        self.assert_error(r, 400, "INVALID_JSON")
        self.assertEqual(await self.broker_order_calls(), 0)
        counts = (await self.gw.get("/v1/metrics/order")).json()
        self.assertEqual(sum(counts["orders_by_state"].values()), 0)

    async def test_side_case_insensitive_and_account_number_alias(self) -> None:
        r = await self.post({**ORDER, "side": "buy", "account_id": f"{CANO}-{PRDT}"}, key="lc")
        self.assertEqual(r.status_code, 201, r.text)


class GuardsTest(OrderCase):
    def gateway_env(self) -> dict[str, str]:
        return {"KIS_MAX_ORDER_QTY": "10", "KIS_MAX_ORDER_NOTIONAL": "1000000", "KIS_DAILY_MAX_ORDERS": "2"}

    async def test_guards_refuse_without_broker_calls(self) -> None:
        self.assert_error(await self.post({**ORDER, "qty": 11}, key="q"), 403, "MAX_QTY_EXCEEDED")
        self.assert_error(await self.post({**ORDER, "qty": 10, "price": 150000}, key="n"), 403,
                          "NOTIONAL_LIMIT_EXCEEDED")
        self.assert_error(await self.post({**ORDER, "side": "SELL"}, key="s"), 403, "INSUFFICIENT_HOLDINGS")
        self.assertEqual(await self.broker_order_calls(), 0)
        self.assertEqual((await self.post(ORDER, key="d1")).status_code, 201)
        self.assertEqual((await self.post(ORDER, key="d2")).status_code, 201)
        self.assert_error(await self.post(ORDER, key="d3"), 403, "DAILY_LIMIT_EXCEEDED")
        rejects = (await self.gw.get("/v1/metrics/order")).json()["rejects_by_code"]
        for code in ("MAX_QTY_EXCEEDED", "NOTIONAL_LIMIT_EXCEEDED", "INSUFFICIENT_HOLDINGS", "DAILY_LIMIT_EXCEEDED"):
            self.assertEqual(rejects.get(code), 1, code)

    async def test_risk_check_is_a_dry_run(self) -> None:
        ok = (await self.gw.post("/v1/risk/check", json=ORDER)).json()
        self.assertTrue(ok["allowed"], ok)
        too_big = (await self.gw.post("/v1/risk/check", json={**ORDER, "qty": 50})).json()
        self.assertEqual(too_big, {"allowed": False, "code": "MAX_QTY_EXCEEDED", "message": too_big["message"]})
        self.assertEqual(await self.broker_order_calls(), 0)
        self.assertEqual(sum((await self.gw.get("/v1/metrics/order")).json()["orders_by_state"].values()), 0)


class DailyLimitConcurrencyTest(OrderCase):
    """The daily order limit holds under a burst: the atomic UPDATE on daily_usage lets exactly N through."""

    def gateway_env(self) -> dict[str, str]:
        return {"KIS_DAILY_MAX_ORDERS": "5"}

    async def test_twenty_concurrent_orders_five_accepted(self) -> None:
        await self.trading.demote()  # hold the queue: count acceptances, not fills
        results = await asyncio.gather(*(self.post(ORDER, key=f"burst-{i}") for i in range(20)))
        codes = sorted(r.status_code for r in results)
        self.assertEqual(codes, [201] * 5 + [403] * 15, [r.text for r in results])
        for r in results:
            if r.status_code == 403:
                self.assert_error(r, 403, "DAILY_LIMIT_EXCEEDED")
        accepted = {r.json()["order_id"] for r in results if r.status_code == 201}
        self.assertEqual(len(accepted), 5)
        listed = (await self.gw.get("/v1/orders")).json()
        self.assertEqual({o["order_id"] for o in listed}, accepted)
        from sqlalchemy import select

        from kis.storage.models import SCHEMA_VERSION, DailyUsage, EventLog

        async with self.trading.sessions() as s:
            usage = (await s.scalars(select(DailyUsage))).all()
            events = (await s.scalars(select(EventLog).where(EventLog.event_type == "order_accepted"))).all()
        self.assertEqual([(u.order_count, u.notional > 0) for u in usage], [(5, True)])
        self.assertEqual(len(events), 5)
        for e in events:  # provenance on every audit row (seed 003 §7.3)
            self.assertRegex(e.correlation_id, r"^corr_[0-9a-f]+$")
            self.assertRegex(e.git_commit_sha or "", r"^([0-9a-f]{40}|unknown)$")
            self.assertEqual(e.schema_version, SCHEMA_VERSION)
            self.assertRegex(e.config_hash or "", r"^[0-9a-f]{16,64}$")
        rejects = (await self.gw.get("/v1/metrics/order")).json()["rejects_by_code"]
        self.assertEqual(rejects.get("DAILY_LIMIT_EXCEEDED"), 15)
        self.assertEqual(await self.broker_order_calls(), 0)
        # A replay of an accepted key still answers (idempotency is checked before the limit).
        first = next(r for r in results if r.status_code == 201)
        again = await self.post(ORDER, key=first.json()["idempotency_key"])
        self.assertEqual((again.status_code, again.json()), (201, first.json()))


    async def test_same_key_burst_on_the_last_slot_is_one_order(self) -> None:
        await self.trading.demote()
        for i in range(4):
            self.assertEqual((await self.post(ORDER, key=f"pre-{i}")).status_code, 201)
        # 50 retries of one order race for the last daily slot: the winner takes it, the rest are replays.
        results = await asyncio.gather(*(self.post(ORDER, key="last-slot") for _ in range(50)))
        self.assertEqual([r.status_code for r in results], [201] * 50,
                         [r.text for r in results if r.status_code != 201])
        self.assertEqual(len({r.json()["order_id"] for r in results}), 1)
        self.assert_error(await self.post(ORDER, key="one-more"), 403, "DAILY_LIMIT_EXCEEDED")
        metrics = (await self.gw.get("/v1/metrics/order")).json()
        self.assertEqual(metrics["rejects_by_code"], {"DAILY_LIMIT_EXCEEDED": 1})
        self.assertEqual(metrics["orders_by_state"]["ACCEPTED"], 5)


class StorageOutageTest(OrderCase):
    """SQLite locked by another writer past the busy timeout: a clear retryable 503, nothing half-written,
    and the retry with the same key places exactly one order."""

    async def test_locked_database_is_a_retryable_503_then_the_retry_places_one_order(self) -> None:
        import sqlite3

        path = self.runtime.engine.url.database
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")  # readers still read (WAL); every writer waits, then gives up
            r = await self.post(ORDER, key="outage-1")
            self.assert_error(r, 503, "STORAGE_UNAVAILABLE")
            self.assertTrue(r.json()["retryable"])
            self.assertNotIn("Traceback", r.text)
            self.assertNotIn("sqlite", r.text.lower())
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        self.assertEqual((await self.gw.get("/v1/orders")).json(), [])
        r = await self.post(ORDER, key="outage-1")
        self.assertEqual(r.status_code, 201, r.text)
        await self.wait_status(r.json()["order_id"], "FILLED")
        again = await self.post(ORDER, key="outage-1")
        self.assertEqual(again.json(), r.json())
        self.assertEqual(await self.broker_order_calls(), 1)


class ClosedMarketTest(OrderCase):
    def gateway_env(self) -> dict[str, str]:
        return {"KIS_MARKET_OVERRIDE": "closed"}

    async def test_out_of_trading_window(self) -> None:
        self.assert_error(await self.post({**ORDER, "price": 70000}, key="c"), 409, "OUT_OF_TRADING_WINDOW")
        self.assertEqual(await self.broker_order_calls(), 0)


class ModifyCancelTest(OrderCase):
    async def resting_limit(self, key: str = "r") -> str:
        st = await self.admin("GET", "/market/005930")
        r = await self.post({**ORDER, "qty": 3, "price": st["lower"]}, key=key)
        self.assertEqual(r.status_code, 201, r.text)
        order = await self.wait_status(r.json()["order_id"], "SUBMITTED")
        return order["order_id"]

    async def test_modify_then_cancel(self) -> None:
        order_id = await self.resting_limit()
        st = await self.admin("GET", "/market/005930")
        new_price = st["lower"] + 100
        r = await self.gw.post(f"/v1/orders/{order_id}/modify", json={"price": new_price})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["price"], new_price)
        self.assertEqual(r.json()["status"], "SUBMITTED")
        again = await self.gw.post(f"/v1/orders/{order_id}/modify", json={"price": new_price})  # a retry
        self.assertEqual((again.status_code, again.json()["price"]), (200, new_price))
        r = await self.gw.post(f"/v1/orders/{order_id}/cancel")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["status"], "CANCELLED")
        self.assertEqual(r.json()["cancelled_qty"], 3)
        account = await self.admin("GET", f"/accounts/{CANO}-{PRDT}")
        self.assertEqual(account["reserved_cash"], 0)
        again = await self.gw.post(f"/v1/orders/{order_id}/cancel")
        self.assert_error(again, 409, "ORDER_TERMINAL")
        stats = await self.admin("GET", "/stats")
        self.assertEqual(stats["rest_calls"].get("TTTC0013U"), 2)

    async def test_seed_000_section_5_bodies_on_a_resting_order(self) -> None:
        await self.admin("POST", "/feed", {"tick_interval_s": 3600})  # the price moves only when told to
        await self.admin("POST", "/market/005930", {"price": 72000})
        r = await self.post({**ORDER, "qty": 2, "price": 70000}, key="seed5")
        order_id = (await self.wait_status(r.json()["order_id"], "SUBMITTED"))["order_id"]
        # Verbatim seed body: re-price both shares.
        r = await self.gw.post(f"/v1/orders/{order_id}/modify", json={"qty": 2, "price": 70100})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual((r.json()["status"], r.json()["price"], r.json()["qty"]), ("SUBMITTED", 70100, 2))
        at_kis = (await self.admin("GET", f"/accounts/{CANO}-{PRDT}"))["orders"]
        open_at_kis = [(o["price"], o["qty"] - o["filled"] - o["cancelled"]) for o in at_kis]
        self.assertEqual([x for x in open_at_kis if x[1]], [(70100, 2)], at_kis)
        # Re-pricing part of an order would split it at KIS into two prices: refused with the reason.
        self.assert_error(await self.gw.post(f"/v1/orders/{order_id}/modify", json={"qty": 1, "price": 70200}), 400,
                          "INVALID_QTY")
        r = await self.gw.post(f"/v1/orders/{order_id}/cancel")
        self.assertEqual((r.status_code, r.json()["status"], r.json()["cancelled_qty"]), (200, "CANCELLED", 2))

    async def test_terminal_and_invalid_transitions(self) -> None:
        filled = (await self.post(ORDER, key="f")).json()["order_id"]
        await self.wait_status(filled, "FILLED")
        # Seed 000 §5 verbatim bodies.
        self.assert_error(await self.gw.post(f"/v1/orders/{filled}/modify", json={"qty": 2, "price": 70100}), 409,
                          "ORDER_TERMINAL")
        self.assert_error(await self.gw.post(f"/v1/orders/{filled}/cancel"), 409, "ORDER_TERMINAL")
        market = await self.resting_limit("m")
        self.assert_error(await self.gw.post(f"/v1/orders/{market}/modify", json={"price": 71950}), 400,
                          "INVALID_PRICE")
        self.assert_error(await self.gw.post("/v1/orders/ord_nope/cancel"), 404, "ORDER_NOT_FOUND")

    async def test_cancel_before_submission_never_reaches_kis(self) -> None:
        await self.trading.kill_switch.set(True, "hold the queue", "ops")
        # Accepted before the switch? No: accept with the switch off, then stop the executor's claim.
        await self.trading.kill_switch.set(False, "accept", "ops")
        await self.trading.demote()
        r = await self.post(ORDER, key="q")
        order_id = r.json()["order_id"]
        c = await self.gw.post(f"/v1/orders/{order_id}/cancel")
        self.assertEqual(c.status_code, 200, c.text)
        self.assertEqual(c.json()["status"], "CANCELLED")
        self.assertEqual(await self.broker_order_calls(), 0)


class PortfolioTest(OrderCase):
    async def test_lists(self) -> None:
        order_id = (await self.post({**ORDER, "qty": 2}, key="p")).json()["order_id"]
        await self.wait_status(order_id, "FILLED")
        balances = (await self.gw.get("/v1/balances?account_id=A1")).json()
        positions = (await self.gw.get("/v1/positions?account_id=A1")).json()
        self.assertIsInstance(balances, list)
        self.assertIsInstance(positions, list)
        self.assertEqual(len(balances), 1)
        self.assertEqual([(p["symbol"], p["qty"]) for p in positions], [("005930", 2)])
        self.assertNotIn(CANO, str(balances) + str(positions))
        self.assert_error(await self.gw.get("/v1/positions?account_id=nope"), 404, "ACCOUNT_NOT_FOUND")


if __name__ == "__main__":
    unittest.main()


class NotConfiguredTest(OrderCase):
    """Seed 000 §6: without a KIS connection the portfolio answers 503 PORTFOLIO_PROVIDER_NOT_CONFIGURED,
    and orders say why they cannot run — nothing is accepted that could never be sent."""

    def gateway_env(self) -> dict[str, str]:
        return {"KIS_ENV": "live", "KIS_APP_KEY": "", "KIS_APP_SECRET": ""}

    async def test_portfolio_and_orders_without_kis(self) -> None:
        for path in ("/v1/balances?account_id=A1", "/v1/positions?account_id=A1", "/v1/balances", "/v1/positions"):
            self.assert_error(await self.gw.get(path), 503, "PORTFOLIO_PROVIDER_NOT_CONFIGURED")
        self.assert_error(await self.post(ORDER, key="nc"), 503, "KIS_NOT_CONFIGURED")
        self.assertEqual((await self.gw.get("/v1/orders")).json(), [])
        status = (await self.gw.get("/v1/session/status")).json()
        self.assertIn("KIS_APP_KEY and KIS_APP_SECRET are required", str(status))
        self.assertEqual(await self.broker_order_calls(), 0)


class LiveGateCase(OrderCase):
    """KIS_ENV=live against a KIS-compatible server (the simulator, through KIS_REST_URL/KIS_WS_URL only)."""

    def live_env(self) -> dict[str, str]:
        return {}

    def gateway_env(self) -> dict[str, str]:
        return {"KIS_ENV": "live", "KIS_REST_URL": self.server.rest_url, "KIS_WS_URL": self.server.ws_url,
                "KIS_HTS_ID": "simhtsid", **self.live_env()}


class LiveDisabledByDefaultTest(LiveGateCase):
    async def test_live_orders_need_an_explicit_enable(self) -> None:
        self.assert_error(await self.post(ORDER, key="live-1"), 403, "LIVE_DISABLED")
        check = (await self.gw.post("/v1/risk/check", json=ORDER)).json()
        self.assertEqual((check["allowed"], check["code"]), (False, "LIVE_DISABLED"))
        self.assertEqual(await self.broker_order_calls(), 0)
        self.assertEqual((await self.gw.get("/v1/orders")).json(), [])


class LiveEnabledOtherAccountTest(LiveGateCase):
    def live_env(self) -> dict[str, str]:
        return {"KIS_LIVE_TRADING_ENABLED": "true", "KIS_LIVE_ACCOUNT_ALLOWLIST": "87654321-01"}

    async def test_an_account_off_the_allowlist_is_refused(self) -> None:
        self.assert_error(await self.post(ORDER, key="live-2"), 403, "LIVE_DISABLED")
        self.assertEqual(await self.broker_order_calls(), 0)


class LiveEnabledAllowlistedTest(LiveGateCase):
    def live_env(self) -> dict[str, str]:
        return {"KIS_LIVE_TRADING_ENABLED": "true", "KIS_LIVE_ACCOUNT_ALLOWLIST": f"{CANO}-{PRDT}"}

    async def test_enabled_and_allowlisted_trades_with_live_tr_ids(self) -> None:
        r = await self.post(ORDER, key="live-3")
        self.assertEqual(r.status_code, 201, r.text)
        await self.wait_status(r.json()["order_id"], "FILLED")
        stats = await self.admin("GET", "/stats")
        self.assertEqual(stats["rest_calls"].get("TTTC0012U"), 1)  # the live buy TR, not the paper one
        self.assertEqual(await self.broker_order_calls(), 1)
