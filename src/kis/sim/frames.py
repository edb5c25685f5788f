"""Realtime frame encoding, server side: ``<enc>|<tr_id>|<count>|<payload>`` and AES notices."""

from __future__ import annotations

import base64
import secrets
import string

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_KEY_ALPHABET = string.ascii_lowercase


def data_frame(tr_id: str, records: list[str], encrypted: bool = False) -> str:
    """Bundle records into one frame; KIS concatenates records with ``^`` and no separator."""
    if not 1 <= len(records) <= 999:
        raise ValueError("a frame carries 1..999 records")
    return f"{'1' if encrypted else '0'}|{tr_id}|{len(records):03d}|{'^'.join(records)}"


def new_key_iv() -> tuple[str, str]:
    """A 32-char AES-256 key and a 16-char IV, ASCII as in the subscribe ACK's output."""
    key = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))
    iv = secrets.token_hex(8)
    return key, iv


def aes_encrypt(plaintext: str, key: str, iv: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


def aes_decrypt(ciphertext_b64: str, key: str, iv: str) -> str:
    dec = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    data = dec.update(base64.b64decode(ciphertext_b64)) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode("utf-8")
