"""Property tests for the simulator's realtime frame encoding (reference §6.4) and notice AES (§6.4.3).

The parsing side is written here from the reference, the way KIS clients do it: split the frame on
``|`` into four parts, split the payload on ``^`` and chunk it by the TR's field count.
"""

from __future__ import annotations

import base64
import string
import unittest

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kis.broker import fields as F
from kis.clock import OffsetClock
from kis.sim.frames import aes_decrypt, aes_encrypt, data_frame, new_key_iv
from kis.sim.market import Market
from kis.sim.symbols import KRX_BY_CODE, US_BY_SYMBOL

TR_IDS = ("H0STCNT0", "H0STASP0", "HDFSCNT0", "H0STCNI0", "H0STCNI9")
# Any text a field may hold: everything but the two separators (and lone surrogates, not UTF-8).
FIELD = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="^|"), max_size=12)
HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
KEY_CHARS = string.ascii_letters + string.digits
AES_KEY = st.text(alphabet=KEY_CHARS, min_size=32, max_size=32)
AES_IV = st.text(alphabet=KEY_CHARS, min_size=16, max_size=16)


def parse_frame(frame: str) -> tuple[str, str, str, str]:
    parts = frame.split("|")
    if len(parts) != 4:
        raise AssertionError(f"a frame has exactly four |-separated parts, got {len(parts)}")
    return parts[0], parts[1], parts[2], parts[3]


def chunk(payload: str, n_fields: int) -> list[list[str]]:
    fields = payload.split("^")
    if len(fields) % n_fields:
        raise AssertionError(f"{len(fields)} fields is not a multiple of {n_fields}")
    return [fields[i:i + n_fields] for i in range(0, len(fields), n_fields)]


@st.composite
def bundles(draw: st.DrawFn, max_records: int = 25) -> tuple[int, list[list[str]]]:
    n_fields = draw(st.integers(1, 60))
    n_records = draw(st.integers(1, max_records))
    record = st.lists(FIELD, min_size=n_fields, max_size=n_fields)
    return n_fields, draw(st.lists(record, min_size=n_records, max_size=n_records))


def independent_decrypt(ciphertext_b64: str, key: str, iv: str) -> bytes:
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    data = decryptor.update(base64.b64decode(ciphertext_b64, validate=True)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(data) + unpadder.finalize()


class DataFrameTest(unittest.TestCase):
    @settings(max_examples=60)
    @given(bundles(), st.sampled_from(TR_IDS), st.booleans())
    def test_round_trip(self, bundle: tuple[int, list[list[str]]], tr_id: str, encrypted: bool) -> None:
        n_fields, records = bundle
        frame = data_frame(tr_id, ["^".join(r) for r in records], encrypted=encrypted)
        enc, tr, count, payload = parse_frame(frame)
        self.assertEqual(enc, "1" if encrypted else "0")
        self.assertEqual(tr, tr_id)
        self.assertEqual(len(count), 3)
        self.assertTrue(count.isdigit())
        self.assertEqual(int(count), len(records))
        self.assertEqual(chunk(payload, n_fields), records)

    @settings(deadline=None)
    @given(st.integers(1, 999), st.integers(1, 59), st.lists(FIELD, min_size=1, max_size=6))
    @example(1, 46, [""])
    @example(9, 46, ["x"])
    @example(10, 59, ["x"])
    @example(99, 26, ["x"])
    @example(100, 46, ["x"])
    @example(999, 46, ["x"])
    def test_counts_1_to_999_zero_padded(self, n: int, n_fields: int, pool: list[str]) -> None:
        # Field 0 carries the record index so order and chunk boundaries are checked too.
        records = [[str(i), *(pool[(i + j) % len(pool)] for j in range(n_fields - 1))] for i in range(n)]
        frame = data_frame("H0STCNT0", ["^".join(r) for r in records])
        enc, tr, count, payload = parse_frame(frame)
        self.assertEqual((enc, tr), ("0", "H0STCNT0"))
        self.assertEqual(count, f"{n:03d}")
        self.assertEqual(count, str(n).rjust(3, "0"))
        self.assertTrue(frame.startswith(f"0|H0STCNT0|{n:03d}|"))
        chunks = chunk(payload, n_fields)
        self.assertEqual(len(chunks), n)
        self.assertEqual([c[0] for c in chunks], [str(i) for i in range(n)])
        self.assertEqual(chunks, records)

    def test_documented_examples(self) -> None:
        rec = "DNASAAPL^AAPL^4"
        self.assertEqual(data_frame("HDFSCNT0", [rec, rec]), "0|HDFSCNT0|002|DNASAAPL^AAPL^4^DNASAAPL^AAPL^4")
        self.assertTrue(data_frame("H0STCNT0", ["a"] * 11).startswith("0|H0STCNT0|011|"))
        self.assertTrue(data_frame("H0STCNI0", ["Zm9v"], encrypted=True).startswith("1|H0STCNI0|001|"))

    def test_empty_fields_survive(self) -> None:
        frame = data_frame("H0STCNT0", ["a^^b", "^^"])
        self.assertEqual(chunk(parse_frame(frame)[3], 3), [["a", "", "b"], ["", "", ""]])

    @given(st.sampled_from((0, 1000, 1001, 5000)))
    def test_out_of_range_counts_are_refused(self, n: int) -> None:
        with self.assertRaises(ValueError):
            data_frame("H0STCNT0", ["x"] * n)


class AesTest(unittest.TestCase):
    @given(ANY_TEXT, AES_KEY, AES_IV)
    def test_round_trip(self, plaintext: str, key: str, iv: str) -> None:
        ciphertext = aes_encrypt(plaintext, key, iv)
        self.assertTrue(ciphertext.isascii())
        raw = base64.b64decode(ciphertext, validate=True)
        size = len(plaintext.encode("utf-8"))
        self.assertEqual(len(raw), (size // 16 + 1) * 16, "PKCS#7 pads to the next whole block")
        self.assertEqual(aes_decrypt(ciphertext, key, iv), plaintext)
        self.assertEqual(independent_decrypt(ciphertext, key, iv).decode("utf-8"), plaintext)

    @given(st.lists(st.text(alphabet=HANGUL, min_size=1, max_size=20), min_size=1, max_size=26),
           AES_KEY, AES_IV)
    def test_korean_records(self, names: list[str], key: str, iv: str) -> None:
        record = "^".join(names)
        ciphertext = aes_encrypt(record, key, iv)
        decrypted = aes_decrypt(ciphertext, key, iv)
        self.assertEqual(decrypted, record)
        self.assertEqual(decrypted.split("^"), names)
        self.assertEqual(independent_decrypt(ciphertext, key, iv), record.encode("utf-8"))

    @given(st.text(alphabet=HANGUL, min_size=1, max_size=30), AES_KEY, AES_IV, AES_IV)
    def test_iv_matters(self, plaintext: str, key: str, iv: str, other_iv: str) -> None:
        if iv != other_iv:
            self.assertNotEqual(aes_encrypt(plaintext, key, iv), aes_encrypt(plaintext, key, other_iv))

    def test_known_answer(self) -> None:
        # Computed with `openssl enc -aes-256-cbc -K <hex key> -iv <hex iv> -base64 -A`, using the
        # key/iv of the reference's sample ACK and a fill record in the 26-field layout.
        key, iv = "uvbpznjqabrxhowcftgehxghhhsxtwro", "ca513e8bf725c575"
        plain = ("HTSID01^1234567801^0000002891^^02^0^00^0^136480^0000000001^000003190^094941^0^2^2^06010^"
                 "000000001^김한투^^1^Y^^10^^하림^000000000")
        expected = ("sME622PiAYfHGOVHqXOKiuqFU8m6nqwDu38p9jBN35+cuYplgiSlRhCRfPShluCNc6irpD9FebC5mGxl"
                    "Th4iPN+d1+o4larQZytO2/a+PGaFjnb70O+gupBrmtBijctA1672hOGmo/D6c/sd3twzZfpoFsLCQo75"
                    "CgzAO8rIgcEMjudqD1qXPgw9HwuLAs5r")
        self.assertEqual(len(plain.split("^")), 26)
        self.assertEqual(aes_encrypt(plain, key, iv), expected)
        self.assertEqual(aes_decrypt(expected, key, iv), plain)

    def test_new_key_iv(self) -> None:
        pairs = [new_key_iv() for _ in range(20)]
        for key, iv in pairs:
            self.assertEqual(len(key), 32)
            self.assertEqual(len(iv), 16)
            self.assertLessEqual(set(key + iv), set(KEY_CHARS))
            self.assertEqual(len(key.encode()), 32, "32 bytes: AES-256")
        self.assertEqual(len({k for k, _ in pairs}), len(pairs))
        self.assertEqual(len({iv for _, iv in pairs}), len(pairs))
        key, iv = pairs[0]
        self.assertEqual(aes_decrypt(aes_encrypt("삼성전자^005930", key, iv), key, iv), "삼성전자^005930")


class RecordBuilderTest(unittest.TestCase):
    """The market's realtime records: exact field counts, no separator inside any field."""

    def test_protocol_tables(self) -> None:
        self.assertEqual(len(F.H0STCNT0), 46)
        self.assertEqual(len(F.H0STASP0), 59)
        self.assertEqual(len(F.HDFSCNT0), 26)
        self.assertEqual(len(F.H0STCNI0), 26)
        self.assertEqual(F.HDFSCNT0[0], "RSYM")

    def check(self, record: str, n_fields: int) -> list[str]:
        self.assertNotIn("|", record)
        fields = record.split("^")
        self.assertEqual(len(fields), n_fields, record)
        frame = data_frame("H0STCNT0", [record, record, record])
        self.assertEqual(chunk(parse_frame(frame)[3], n_fields), [fields] * 3)
        return fields

    @settings(deadline=None, max_examples=60)
    @given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.sampled_from(sorted(KRX_BY_CODE)))
    def test_domestic_records(self, seed: int, steps: int, code: str) -> None:
        market = Market(OffsetClock(), seed)
        for _ in range(steps):
            market.step_krx(code)
        self.assertEqual(self.check(market.h0stcnt0(code), 46)[0], code)
        self.assertEqual(self.check(market.h0stasp0(code), 59)[0], code)

    @settings(deadline=None, max_examples=40)
    @given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.sampled_from(sorted(US_BY_SYMBOL)))
    def test_overseas_records(self, seed: int, steps: int, symbol: str) -> None:
        market = Market(OffsetClock(), seed)
        for _ in range(steps):
            market.step_us(symbol)
        fields = self.check(market.hdfscnt0(symbol), 26)
        self.assertEqual(fields[1], symbol)
        self.assertTrue(fields[0].startswith("D") and fields[0].endswith(symbol))


if __name__ == "__main__":
    unittest.main()
