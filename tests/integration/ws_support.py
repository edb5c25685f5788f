"""Support for the WebSocket conformance tests: bounded receives, frame parsing, KRX/AES checks.

Everything here is written from the protocol reference (§6), not from the simulator's code, so the
tests compare the simulator against the wire format a KIS client expects. Every receive has a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.exceptions import ConnectionClosed

from kis_testing import SimTestCase, subscribe_msg, wait_until

KST = ZoneInfo("Asia/Seoul")
TIMEOUT = 5.0

# Field counts per record (reference §6.4.1–§6.4.4).
N_H0STCNT0 = 46
N_H0STASP0 = 59
N_HDFSCNT0 = 26
N_H0STCNI0 = 26

# KRX tick table, 2023 (reference §7): (upper bound exclusive, tick).
_TICKS = ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500))


def krx_tick(price: int) -> int:
    for bound, tick in _TICKS:
        if price < bound:
            return tick
    return 1_000


def on_krx_grid(price: int) -> bool:
    return price > 0 and price % krx_tick(price) == 0


@dataclass(frozen=True)
class DataFrame:
    """``<enc>|<tr_id>|<count>|<payload>`` (reference §6.4)."""

    enc: str
    tr_id: str
    count: str
    payload: str
    received_at: float = 0.0

    @property
    def n(self) -> int:
        return int(self.count)

    def records(self, n_fields: int) -> list[list[str]]:
        """Split the payload into records of ``n_fields`` each; the field count must be exact."""
        fields = self.payload.split("^")
        if len(fields) != n_fields * self.n:
            raise AssertionError(f"{self.tr_id} frame with count {self.count} has {len(fields)} fields, "
                                 f"expected {n_fields} x {self.n}")
        return [fields[i:i + n_fields] for i in range(0, len(fields), n_fields)]


def is_data(text: str) -> bool:
    return text[:1] in ("0", "1")


def parse_data_frame(text: str, received_at: float = 0.0) -> DataFrame:
    parts = text.split("|", 3)
    if len(parts) != 4 or parts[0] not in ("0", "1"):
        raise AssertionError(f"not a realtime data frame: {text[:120]!r}")
    return DataFrame(*parts, received_at=received_at)


def is_pingpong(msg: dict[str, Any]) -> bool:
    return msg.get("header", {}).get("tr_id") == "PINGPONG" and "body" not in msg


async def recv_text(ws: Any, deadline: float, what: str = "a frame") -> str:
    """One text frame before ``deadline`` (event-loop time); a timeout fails the test."""
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        raise AssertionError(f"timed out waiting for {what}")
    try:
        message = await asyncio.wait_for(ws.recv(), remaining)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
    if not isinstance(message, str):
        raise AssertionError(f"expected a text frame, got {type(message).__name__}")
    return message


async def recv_matching(ws: Any, predicate: Callable[[str], bool], within: float = TIMEOUT,
                        what: str = "a matching frame") -> str:
    """Skip frames until one satisfies ``predicate``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        text = await recv_text(ws, deadline, what)
        if predicate(text):
            return text


async def recv_control(ws: Any, within: float = TIMEOUT) -> dict[str, Any]:
    """The next JSON control frame, skipping realtime data and PINGPONG."""
    def control(text: str) -> bool:
        return not is_data(text) and not is_pingpong(json.loads(text))

    return json.loads(await recv_matching(ws, control, within, "a control frame"))


async def recv_pingpong(ws: Any, within: float = TIMEOUT) -> tuple[str, dict[str, Any]]:
    """The next PINGPONG (raw text and parsed), skipping everything else."""
    text = await recv_matching(ws, lambda t: not is_data(t) and is_pingpong(json.loads(t)), within,
                               "a PINGPONG")
    return text, json.loads(text)


async def recv_data(ws: Any, tr_id: str | None = None, within: float = TIMEOUT,
                    key: str | None = None) -> DataFrame:
    """The next data frame (optionally of ``tr_id`` whose first field is ``key``), skipping others."""
    def wanted(text: str) -> bool:
        if not is_data(text):
            return False
        frame = parse_data_frame(text)
        if tr_id is not None and frame.tr_id != tr_id:
            return False
        return key is None or frame.payload.split("^", 1)[0] == key

    text = await recv_matching(ws, wanted, within, f"a {tr_id or 'data'} frame")
    return parse_data_frame(text, asyncio.get_running_loop().time())


async def recv_closed(ws: Any, within: float = TIMEOUT) -> ConnectionClosed:
    """Read (and discard) frames until the connection closes; returns the close exception."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await recv_text(ws, deadline, "the connection to close")
        except ConnectionClosed as closed:
            return closed


def aes_decrypt(ciphertext_b64: str, key: str, iv: str) -> str:
    """AES-256-CBC + PKCS#7, base64 (reference §6.4.3), independent of the simulator's code."""
    decryptor = Cipher(algorithms.AES(key.encode("ascii")), modes.CBC(iv.encode("ascii"))).decryptor()
    data = decryptor.update(base64.b64decode(ciphertext_b64, validate=True)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode("utf-8")


def kst_stamp(ymd: str, hms: str) -> datetime:
    return datetime.strptime(ymd + hms, "%Y%m%d%H%M%S").replace(tzinfo=KST)


class WsTestCase(SimTestCase):
    """SimTestCase plus WebSocket conveniences shared by the conformance suites."""

    async def asyncSetUp(self) -> None:
        # IsolatedAsyncioTestCase runs its loop in asyncio debug mode, which slows every callback
        # several-fold; with dozens of live subscriptions the feed then outruns the test client. The
        # simulator never runs in debug mode, so these tests don't either.
        asyncio.get_running_loop().set_debug(False)
        await super().asyncSetUp()

    async def subscribe(self, ws: Any, approval: str, tr_id: str, tr_key: str,
                        tr_type: str = "1") -> dict[str, Any]:
        await ws.send(subscribe_msg(approval, tr_id, tr_key, tr_type))
        return await recv_control(ws)

    async def subscribe_ok(self, ws: Any, approval: str, tr_id: str, tr_key: str) -> dict[str, Any]:
        ack = await self.subscribe(ws, approval, tr_id, tr_key)
        self.assertEqual(ack["body"]["msg_cd"], "OPSP0000", ack)
        return ack

    async def ws_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = (await self.admin("GET", "/stats"))["ws"]
        return stats

    async def only_session(self) -> dict[str, Any]:
        sessions = (await self.ws_stats())["sessions"]
        self.assertEqual(len(sessions), 1, sessions)
        session: dict[str, Any] = sessions[0]
        return session

    async def session_count(self) -> int:
        return len((await self.ws_stats())["sessions"])

    async def wait_for_sessions(self, n: int, within: float = TIMEOUT) -> None:
        async def has_n() -> bool:
            return await self.session_count() == n

        await wait_until(has_n, timeout=within, message=f"{n} ws session(s)")
