import io
import json
import logging
import unittest

from kis.logs import configure_logging, get_logger, mask_account, mask_secret, mask_text


class MaskingTest(unittest.TestCase):
    def test_helpers(self) -> None:
        self.assertEqual(mask_account("12345678-01"), "1234****-01")
        self.assertEqual(mask_secret("abcdefghij"), "***ghij")
        self.assertNotIn("eyJabc.def", mask_text("Authorization: Bearer eyJabc.def"))
        self.assertIn("1234****-01", mask_text("account 12345678-01 rejected"))

    def test_log_lines_never_carry_secrets(self) -> None:
        stream = io.StringIO()
        configure_logging("INFO", stream=stream)
        try:
            log = get_logger("test")
            secret = "S" * 180
            log.info("token_issued", app_secret=secret, access_token="eyJhbGciOi.payload.sig",
                     account_no="12345678-01", detail="for 12345678-01", tr_key="005930",
                     headers={"appkey": "PSabcdefghijkl", "tr_id": "FHKST01010100"})
            line = json.loads(stream.getvalue().strip().splitlines()[-1])
        finally:
            logging.getLogger().handlers.clear()
        text = json.dumps(line, ensure_ascii=False)
        self.assertNotIn(secret, text)
        self.assertNotIn("eyJhbGciOi", text)
        self.assertNotIn("12345678", text)
        self.assertNotIn("PSabcdefghijkl", text)
        self.assertEqual(line["tr_key"], "005930")  # not a secret
        self.assertEqual(line["headers"]["tr_id"], "FHKST01010100")
        self.assertEqual(line["event"], "token_issued")
