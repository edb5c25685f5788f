import unittest

from kis.sim.faults import Faults


class FaultsTest(unittest.TestCase):
    def test_update_coerces_strings(self) -> None:
        f = Faults()
        f.update({"ws_silent": "true", "ws_drop_after_s": "2.5", "rest_5xx_burst": "3", "ws_idle_timeout_s": "none"})
        self.assertTrue(f.ws_silent)
        self.assertEqual(f.ws_drop_after_s, 2.5)
        self.assertEqual(f.rest_5xx_burst, 3)
        self.assertIsNone(f.ws_idle_timeout_s)

    def test_bad_values(self) -> None:
        f = Faults()
        with self.assertRaises(KeyError):
            f.update({"nope": 1})
        with self.assertRaises(ValueError):
            f.update({"ws_silent": "maybe"})
        with self.assertRaises(ValueError):
            f.update({"rest_5xx_burst": "-1"})
        with self.assertRaises(ValueError):
            f.update({"latency_ms": None})
