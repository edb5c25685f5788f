"""`kis validate-keys`: real-key checks only in the gap windows; against a KIS-compatible server."""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime

from kis.clock import KST
from kis.keycheck import in_gap_window
from kis.sim.engine import SimConfig
from kis_testing import APP_KEY, APP_SECRET, SimTestCase


class GapWindowTest(unittest.TestCase):
    def test_windows(self) -> None:
        allowed = [(17, 0), (21, 59), (6, 0), (7, 59)]
        refused = [(8, 0), (8, 30), (12, 0), (16, 59), (22, 0), (23, 30), (3, 0), (5, 59)]
        for h, m in allowed:
            self.assertTrue(in_gap_window(datetime(2026, 11, 23, h, m, tzinfo=KST)), (h, m))
        for h, m in refused:
            self.assertFalse(in_gap_window(datetime(2026, 11, 23, h, m, tzinfo=KST)), (h, m))


class ValidateKeysCommandTest(SimTestCase):
    def sim_config(self) -> SimConfig:
        self._creds = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"apps": [{"app_key": APP_KEY, "app_secret": APP_SECRET, "hts_id": "tester"}]}, self._creds)
        self._creds.close()
        return SimConfig(credentials_file=self._creds.name, token_min_interval_s=60)

    async def asyncTearDown(self) -> None:
        await super().asyncTearDown()
        os.unlink(self._creds.name)

    async def run_cli(self, secret: str) -> tuple[int, dict]:
        with tempfile.TemporaryDirectory() as state:
            env = {**os.environ, "KIS_ENV": "mock", "KIS_REST_URL": self.server.rest_url, "KIS_APP_KEY": APP_KEY,
                   "KIS_APP_SECRET": secret, "KIS_STATE_DIR": state}
            # In a thread: the simulator answering it runs on this test's event loop.
            r = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "kis.cli", "validate-keys",
                                                         "--force-window"], env=env, capture_output=True,
                                        text=True, timeout=60)
        return r.returncode, json.loads(r.stdout.strip().splitlines()[-1])

    async def test_good_and_bad_keys(self) -> None:
        code, out = await self.run_cli(APP_SECRET)
        self.assertEqual((code, out["ran"], out["ok"]), (0, True, True), out)
        code, out = await self.run_cli("wrong-secret")
        self.assertEqual((code, out["ran"], out["ok"]), (1, True, False), out)
        self.assertIn("EGW00105", out["reason"])
        self.assertNotIn("wrong-secret", json.dumps(out))
        stats = await self.admin("GET", "/stats")
        self.assertEqual(stats["token_issuances"], 1)
        self.assertEqual(stats["approval_keys"], 1)


if __name__ == "__main__":
    unittest.main()
