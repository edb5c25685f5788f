"""AES-256-CBC for KIS execution notices: key and iv (ASCII) from the subscribe ACK, PKCS#7, base64."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def aes_cbc_encrypt(plaintext: str, key: str, iv: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


def aes_cbc_decrypt(ciphertext_b64: str, key: str, iv: str) -> str:
    """Raises ValueError on anything that is not a valid notice ciphertext."""
    try:
        raw = base64.b64decode(ciphertext_b64, validate=True)
        dec = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
        data = dec.update(raw) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(data) + unpadder.finalize()).decode("utf-8")
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"not a valid notice ciphertext: {err}") from None
