import os
import unittest
from unittest import mock

from kis.config import KisEnv, Settings


class SettingsTest(unittest.TestCase):
    def test_defaults_are_the_embedded_simulator(self) -> None:
        with mock.patch.dict(os.environ, {}, clear=True):
            s = Settings()
        self.assertIs(s.kis_env, KisEnv.SIM)
        self.assertEqual(s.ws_symbols, ["005930", "000660"])
        self.assertEqual(s.kis_db_url, "sqlite:///kis_trading.db")
        self.assertIsNone(s.kis_market_override)
        self.assertFalse(s.paper)

    def test_seed_env_vars(self) -> None:
        env = {"KIS_APP_KEY": "k", "KIS_APP_SECRET": "s", "KIS_ACCOUNT_NO": "12345678-01", "KIS_ENV": "MOCK",
               "KIS_MOCK": "false", "KIS_WS_SYMBOLS": "005930, 000660,", "KIS_MARKET_OVERRIDE": "closed"}
        with mock.patch.dict(os.environ, env, clear=True):
            s = Settings()
        self.assertIs(s.kis_env, KisEnv.MOCK)
        self.assertTrue(s.paper)
        self.assertEqual(s.ws_symbols, ["005930", "000660"])
        self.assertEqual(s.account_no, "12345678-01")
        self.assertEqual(s.kis_market_override.value, "closed")
        self.assertNotIn("s", repr(s.kis_app_secret).replace("SecretStr", "").replace("'**********'", ""))

    def test_account_from_cano(self) -> None:
        with mock.patch.dict(os.environ, {"KIS_CANO": "87654321", "KIS_ACNT_PRDT_CD_KR": "01"}, clear=True):
            self.assertEqual(Settings().account_no, "87654321-01")

    def test_bad_env_is_rejected(self) -> None:
        with mock.patch.dict(os.environ, {"KIS_ENV": "prod"}, clear=True), self.assertRaises(ValueError):
            Settings()
