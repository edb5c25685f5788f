"""TokenManager against the simulator over real HTTP: issuance, reuse, refresh, invalidation, the
one-per-minute rule, and single-flight refresh across separate OS processes (file lock and Redis lock).

The simulator counts every tokenP call (``rest_calls["/oauth2/tokenP"]``) and every new token
(``token_issuances``), so "exactly one issuance" is checked where KIS would count it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import sys
import tempfile
import textwrap
import time
import unittest
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from kis.broker import trids as T
from kis.broker.auth import TokenManager
from kis.broker.errors import TokenExpiredError, TokenIssueTooSoonError
from kis.broker.pacing import Priority, RatePacer
from kis.broker.rest import KisRestClient
from kis.broker.token_store import (
    REDIS_LOCK_NAME,
    FileTokenStore,
    MemoryTokenStore,
    RedisTokenStore,
    TokenStore,
    store_key,
)
from kis.clock import OffsetClock, SystemClock
from kis.sim.engine import SimConfig
from kis_testing import APP_KEY, APP_SECRET, SimTestCase, wait_until

REDIS_URL = os.environ.get("KIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN_P = T.TOKEN_PATH
N_PROCESSES = 4


class TokenCase(SimTestCase):
    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.05)

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self._tmp = tempfile.TemporaryDirectory()
        self.state_dir = Path(self._tmp.name)
        self.key = store_key("sim", APP_KEY, self.server.rest_url)

    async def asyncTearDown(self) -> None:
        await super().asyncTearDown()
        self._tmp.cleanup()

    def manager(self, store: TokenStore, clock: Any = None, **kw: Any) -> TokenManager:
        return TokenManager(self.http, APP_KEY, APP_SECRET, self.key, store, clock or SystemClock(), **kw)

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("GET", "/stats")
        return result

    async def token_calls(self) -> int:
        return int((await self.stats())["rest_calls"].get(TOKEN_P, 0))


class TokenLifecycleTest(TokenCase):
    async def test_first_get_issues_once_then_reuses(self) -> None:
        tm = self.manager(MemoryTokenStore())
        first = await tm.get()
        self.assertTrue(first.startswith("eyJ"))
        self.assertEqual(await tm.get(), first)
        self.assertEqual(await tm.get(max_wait=0), first)
        stats = await self.stats()
        self.assertEqual(stats["token_issuances"], 1)
        self.assertEqual(stats["rest_calls"][TOKEN_P], 1)
        self.assertEqual(tm.issued, 1)
        self.assertTrue(tm.token_state["has_token"])

    async def test_file_store_reuse_across_instances(self) -> None:
        a = self.manager(FileTokenStore(self.state_dir))
        b = self.manager(FileTokenStore(self.state_dir))  # another instance, as another process would be
        token = await a.get()
        self.assertEqual(await b.get(), token)
        self.assertEqual((a.issued, b.issued), (1, 0))
        self.assertEqual(await self.token_calls(), 1)
        files = [p.name for p in self.state_dir.iterdir() if p.suffix == ".json"]
        self.assertEqual(files, [f"token-{self.key}.json"])
        self.assertNotIn(APP_KEY, files[0])  # the app key never appears in a path
        mode = stat.S_IMODE((self.state_dir / files[0]).stat().st_mode)
        self.assertEqual(mode, 0o600)
        record = json.loads((self.state_dir / files[0]).read_text())
        self.assertEqual(record["access_token"], token)
        self.assertFalse(record["invalid"])

    async def test_expired_token_is_invalidated_and_the_call_retried_once(self) -> None:
        tm = self.manager(FileTokenStore(self.state_dir))  # default rules: 61 s between own issuances
        pacer = RatePacer(20, SystemClock())
        rest = KisRestClient(self.server.rest_url, APP_KEY, APP_SECRET, tm, pacer)
        try:
            old = await tm.get()
            await self.admin("POST", "/tokens/expire")
            r = await rest.call("GET", T.INQUIRE_PRICE_PATH, T.INQUIRE_PRICE,
                                params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"})
            self.assertEqual(r.body["rt_cd"], "0")
            self.assertTrue(r.body["output"]["stck_prpr"])
            new = await tm.get()
            self.assertNotEqual(new, old)
            stats = await self.stats()
            self.assertEqual(stats["rest_errors"].get("EGW00123"), 1)  # one refused call ...
            self.assertEqual(stats["rest_calls"].get(T.INQUIRE_PRICE), 1)  # ... one retried, served
            self.assertEqual(stats["token_issuances"], 2)
            self.assertEqual(stats["rest_calls"][TOKEN_P], 2)
            self.assertEqual(rest.calls, 2)
            stored = await FileTokenStore(self.state_dir).load(self.key)
            assert stored is not None
            self.assertEqual(stored["access_token"], new)
            self.assertFalse(stored["invalid"])
        finally:
            await pacer.close()
            await rest.aclose()

    async def test_one_issuance_per_minute_is_honoured(self) -> None:
        tm = self.manager(FileTokenStore(self.state_dir))  # default: 61 s between issuances
        token = await tm.get()
        await tm.invalidate(token)  # say KIS rejected it a moment after it was issued
        t0 = time.monotonic()
        with self.assertRaises(TokenIssueTooSoonError) as ctx:
            await tm.get(max_wait=0.5)  # one tokenP goes (KIS's word beats ours) and is refused
        self.assertLess(time.monotonic() - t0, 0.4)  # refused at once, not after waiting
        self.assertTrue(ctx.exception.retryable)
        with self.assertRaises(TokenIssueTooSoonError):
            await tm.get(max_wait=0.5)  # now nobody asks again within the minute ...
        other = self.manager(FileTokenStore(self.state_dir))
        with self.assertRaises(TokenIssueTooSoonError):
            await other.get(max_wait=1)  # ... not even another instance sharing the store
        stats = await self.stats()
        self.assertEqual(stats["token_issuances"], 1)
        self.assertEqual(stats["rest_calls"][TOKEN_P], 2)
        self.assertEqual(stats["rest_errors"].get("EGW00133"), 1)
        self.assertFalse(tm.token_state["has_token"])

    async def test_tokens_are_not_reissued_while_valid(self) -> None:
        # Many concurrent callers in one process, two instances: one tokenP in all.
        a = self.manager(FileTokenStore(self.state_dir))
        b = self.manager(FileTokenStore(self.state_dir))
        tokens = await asyncio.gather(*(m.get() for m in [a, b] * 10))
        self.assertEqual(len(set(tokens)), 1)
        self.assertEqual(await self.token_calls(), 1)

    async def test_server_side_too_soon_is_remembered(self) -> None:
        # A process with its own, empty store does not know a token was issued a moment ago: KIS answers
        # EGW00133. It records that and does not ask again within the minute.
        await self.manager(FileTokenStore(self.state_dir / "a")).get()
        blind = self.manager(FileTokenStore(self.state_dir / "b"))
        with self.assertRaises(TokenIssueTooSoonError):
            await blind.get(max_wait=0.5)
        with self.assertRaises(TokenIssueTooSoonError):
            await blind.get(max_wait=0.5)
        stats = await self.stats()
        self.assertEqual(stats["rest_errors"].get("EGW00133"), 1)
        self.assertEqual(stats["rest_calls"][TOKEN_P], 2)
        self.assertEqual(stats["token_issuances"], 1)

    async def test_short_max_wait_is_not_held_behind_a_waiting_caller(self) -> None:
        store = CountingStore()
        tm = self.manager(store, issue_min_interval=timedelta(seconds=5))
        token = await tm.get()
        await tm.invalidate(token)
        loads = store.loads
        patient = asyncio.create_task(tm.get())  # prepared to wait out the interval
        try:
            await wait_until(lambda: store.loads > loads, message="the patient caller looked at the store")
            t0 = time.monotonic()
            with self.assertRaises(TokenIssueTooSoonError):
                await tm.get(max_wait=0.2)
            self.assertLess(time.monotonic() - t0, 0.2)  # not queued behind the patient one's wait
            self.assertFalse(patient.done())
        finally:
            patient.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await patient
        self.assertEqual(await self.token_calls(), 2)  # the issuance and the patient's refused attempt


class CountingStore(MemoryTokenStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    async def load(self, key: str) -> dict[str, Any] | None:
        self.loads += 1
        return await super().load(key)


class TokenTimingTest(TokenCase):
    """Refresh ahead of expiry and the wait for the next allowed issuance, with the simulator's own
    per-minute rule shortened so that the client's rule is the one being exercised."""

    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=0.0, tick_interval_s=0.05)

    async def advance(self, clock: OffsetClock, seconds: float) -> None:
        await self.admin("POST", "/clock", {"advance_s": seconds})
        clock.advance(seconds)

    async def test_refresh_ahead_of_expiry(self) -> None:
        clock = OffsetClock()
        tm = self.manager(FileTokenStore(self.state_dir), clock=clock, refresh_margin=timedelta(minutes=10))
        first = await tm.get()
        await self.advance(clock, 24 * 3600 - 20 * 60)  # 20 min before expiry: still reused
        self.assertEqual(await tm.get(), first)
        self.assertEqual(await self.token_calls(), 1)
        await self.advance(clock, 15 * 60)  # 5 min before expiry: inside the margin -> refreshed
        second = await tm.get()
        self.assertNotEqual(second, first)
        stats = await self.stats()
        self.assertEqual((stats["token_issuances"], stats["rest_calls"][TOKEN_P]), (2, 2))
        self.assertEqual(stats["rest_errors"], {})
        # The refreshed token works (its absolute KST expiry is the simulator's, on the shifted clock).
        r = await self.http.get(T.INQUIRE_PRICE_PATH, params={"FID_COND_MRKT_DIV_CODE": "J",
                                                             "FID_INPUT_ISCD": "005930"},
                                headers={"authorization": f"Bearer {second}", "appkey": APP_KEY,
                                         "appsecret": APP_SECRET, "tr_id": T.INQUIRE_PRICE, "custtype": "P"})
        self.assertEqual(r.json()["rt_cd"], "0", r.text)

    async def test_in_margin_but_too_soon_keeps_the_working_token(self) -> None:
        clock = OffsetClock()
        tm = self.manager(MemoryTokenStore(), clock=clock, refresh_margin=timedelta(hours=25))
        first = await tm.get()  # the margin is longer than the lifetime: due for refresh at once
        self.assertEqual(await tm.get(max_wait=0), first)  # ... but not within the minute
        self.assertEqual(await self.token_calls(), 1)

    async def test_waits_for_the_next_allowed_issuance(self) -> None:
        self.sim.auth.token_min_interval_s = 0.5  # KIS's per-minute rule, shrunk
        tm = self.manager(MemoryTokenStore(), issue_min_interval=timedelta(seconds=0.6))
        token = await tm.get()
        t0 = time.monotonic()
        await tm.invalidate(token)
        again = await asyncio.wait_for(tm.get(), 5)  # refused once (EGW00133), waits, then served
        self.assertGreaterEqual(time.monotonic() - t0, 0.55)
        stats = await self.stats()
        self.assertEqual(stats["rest_calls"][TOKEN_P], 3)
        self.assertEqual(stats["rest_errors"].get("EGW00133"), 1)
        # Within 6 h KIS answers tokenP with the token it already issued (reference §2.1).
        self.assertEqual(again, token)
        self.assertEqual(stats["token_issuances"], 1)
        self.assertTrue(tm.token_state["has_token"])


class RetryOnceTest(unittest.IsolatedAsyncioTestCase):
    """A token the server keeps refusing: one refresh and one retry, then the typed error."""

    async def test_second_refusal_is_raised(self) -> None:
        counts = {"token": 0, "api": 0}

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == T.TOKEN_PATH:
                counts["token"] += 1
                return httpx.Response(200, json={"access_token": f"tok{counts['token']}",
                                                 "access_token_token_expired": "2099-01-01 00:00:00",
                                                 "token_type": "Bearer", "expires_in": 86400})
            counts["api"] += 1
            return httpx.Response(500, json={"rt_cd": "1", "msg_cd": "EGW00123",
                                             "msg1": "기간이 만료된 token 입니다."})

        http = httpx.AsyncClient(base_url="http://kis.invalid", transport=httpx.MockTransport(handler))
        tm = TokenManager(http, APP_KEY, APP_SECRET, "k", MemoryTokenStore(), SystemClock(),
                          issue_min_interval=timedelta(0))
        pacer = RatePacer(100, SystemClock())
        rest = KisRestClient("http://kis.invalid", APP_KEY, APP_SECRET, tm, pacer, http=http)
        try:
            with self.assertRaises(TokenExpiredError):
                await rest.call("GET", T.INQUIRE_PRICE_PATH, T.INQUIRE_PRICE, priority=Priority.QUOTE)
            self.assertEqual(counts, {"token": 2, "api": 2})
        finally:
            await pacer.close()
            await http.aclose()


# --- cross-process single flight ----------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import asyncio, json, os, sys, time
    import httpx
    from kis.broker.auth import TokenManager
    from kis.broker.token_store import FileTokenStore, MemoryTokenStore, RedisTokenStore
    from kis.clock import SystemClock

    rest_url, mode, where, key, app_key, app_secret, ready, go = sys.argv[1:9]

    async def main():
        redis = None
        if mode == "file":
            store = FileTokenStore(where)
        elif mode == "redis":
            import redis.asyncio as aioredis
            url, prefix = where.split("|", 1)
            redis = aioredis.from_url(url)
            store = RedisTokenStore(redis, prefix=prefix)
        else:
            store = MemoryTokenStore()  # control: no shared store, no shared lock
        async with httpx.AsyncClient(base_url=rest_url, timeout=10) as http:
            tm = TokenManager(http, app_key, app_secret, key, store, SystemClock())
            open(ready, "w").close()
            deadline = time.monotonic() + 20
            while not os.path.exists(go):
                if time.monotonic() > deadline:
                    raise SystemExit("never told to go")
                await asyncio.sleep(0.001)
            try:
                token = await tm.get(max_wait=5)
                out = {"token": token, "issued": tm.issued}
            except Exception as err:
                out = {"error": type(err).__name__, "issued": tm.issued}
        if redis is not None:
            await redis.aclose()
        print(json.dumps(out))

    asyncio.run(main())
""")


class CrossProcessCase(TokenCase):
    def sim_config(self) -> SimConfig:
        return SimConfig(token_min_interval_s=60.0, tick_interval_s=0.05)

    async def race(self, mode: str, where: str, n: int = N_PROCESSES) -> list[dict[str, Any]]:
        """Start ``n`` Python processes, let each build its TokenManager, then release them together."""
        # tokenP takes 150 ms, so every process arrives while the first one is still issuing.
        await self.admin("POST", "/faults", {"latency_ms": 150})
        sync = self.state_dir / f"sync-{uuid.uuid4().hex[:6]}"
        sync.mkdir()
        go = sync / "go"
        procs = []
        for i in range(n):
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD, self.server.rest_url, mode, where, self.key, APP_KEY, APP_SECRET,
                str(sync / f"ready-{i}"), str(go),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE))
        try:
            await wait_until(lambda: all((sync / f"ready-{i}").exists() for i in range(n)), 30,
                             message="child processes ready")
            go.touch()
            outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 30)
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        results = []
        for (out, err), p in zip(outs, procs, strict=True):
            self.assertEqual(p.returncode, 0, err.decode()[-2000:])
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        await self.admin("POST", "/faults", {"latency_ms": 0})
        return results

    async def check_single_flight(self, results: list[dict[str, Any]]) -> None:
        self.assertTrue(all("token" in r for r in results), results)
        self.assertEqual(len({r["token"] for r in results}), 1, "every process got the same token")
        self.assertEqual(sum(r["issued"] for r in results), 1, results)
        stats = await self.stats()
        self.assertEqual(stats["token_issuances"], 1)
        self.assertEqual(stats["rest_calls"][TOKEN_P], 1)  # one tokenP call in all
        self.assertNotIn("EGW00133", stats["rest_errors"])


class FileCrossProcessTest(CrossProcessCase):
    async def test_file_store_single_flight_across_processes(self) -> None:
        results = await self.race("file", str(self.state_dir / "tokens"))
        await self.check_single_flight(results)
        record = await FileTokenStore(self.state_dir / "tokens").load(self.key)
        assert record is not None
        self.assertEqual(record["access_token"], results[0]["token"])

    async def test_control_without_a_shared_lock_races(self) -> None:
        # The same race with nothing shared: every process asks KIS, which is what the lock prevents.
        results = await self.race("none", "-")
        stats = await self.stats()
        self.assertEqual(stats["rest_calls"][TOKEN_P], N_PROCESSES, results)
        self.assertEqual(stats["rest_errors"].get("EGW00133"), N_PROCESSES - 1)


class RedisCrossProcessTest(CrossProcessCase):
    async def asyncSetUp(self) -> None:
        import redis.asyncio as aioredis

        await super().asyncSetUp()
        self.redis = aioredis.from_url(REDIS_URL)
        try:
            await self.redis.ping()
        except Exception as err:  # pragma: no cover - depends on the machine
            await self.redis.aclose()
            self.skipTest(f"no Redis at {REDIS_URL}: {err}")
        self.prefix = f"kis:test:{uuid.uuid4().hex}:"

    async def asyncTearDown(self) -> None:
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}*")]
        if keys:
            await self.redis.delete(*keys)
        await self.redis.aclose()
        await super().asyncTearDown()

    async def test_redis_store_single_flight_across_processes(self) -> None:
        results = await self.race("redis", f"{REDIS_URL}|{self.prefix}")
        await self.check_single_flight(results)
        store = RedisTokenStore(self.redis, prefix=self.prefix)
        record = await store.load(self.key)
        assert record is not None
        self.assertEqual(record["access_token"], results[0]["token"])
        self.assertEqual(await self.redis.exists(REDIS_LOCK_NAME), 0)  # released

    async def test_refresh_waits_for_the_token_refresh_lock(self) -> None:
        self.assertEqual(REDIS_LOCK_NAME, "token_refresh")
        store = RedisTokenStore(self.redis, prefix=self.prefix)
        async with store.lock(self.key):
            ttl_ms = await self.redis.pttl("token_refresh")
            self.assertGreater(ttl_ms, 9_000)  # the seed's redis.lock("token_refresh", timeout=10)
            self.assertLessEqual(ttl_ms, 10_000)
        held = self.redis.lock("token_refresh", timeout=5)
        self.assertTrue(await held.acquire(blocking=False))
        tm = self.manager(store)
        task = asyncio.create_task(tm.get())
        try:
            done, _ = await asyncio.wait({task}, timeout=0.4)
            self.assertEqual(done, set(), "get() must wait while another process holds token_refresh")
            self.assertEqual(await self.token_calls(), 0)
        finally:
            await held.release()
        token = await asyncio.wait_for(task, 5)
        self.assertEqual(await self.token_calls(), 1)
        self.assertEqual((await store.load(self.key) or {}).get("access_token"), token)


if __name__ == "__main__":
    unittest.main()
