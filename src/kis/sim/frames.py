"""Realtime frame encoding, server side: ``<enc>|<tr_id>|<count>|<payload>`` and AES notices."""

from __future__ import annotations

import secrets
import string

# The notice cipher is the protocol's, shared with the adapter: one implementation, both directions.
from kis.broker.crypto import aes_cbc_decrypt as aes_decrypt
from kis.broker.crypto import aes_cbc_encrypt as aes_encrypt

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


__all__ = ["aes_decrypt", "aes_encrypt", "data_frame", "new_key_iv"]
