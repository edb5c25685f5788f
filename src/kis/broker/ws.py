"""The KIS realtime session: connect, subscribe, keep alive, reconnect — never loop into a ban.

- Subscriptions are tracked by ACK: OPSP0000 and OPSP0002 (already subscribed) both mean held.
- A slot allocator keeps registrations within the session cap (41): pinned keys stay, on-demand keys
  are evicted least-recently-used.
- Keep-alive: server PINGPONGs are echoed back as text; an app-level PINGPONG goes out every 30 s
  (idle L4 timeouts at 10/30 min, seed 002).
- Reconnect: exponential backoff with jitter. Before subscribing on a new socket, everything held (or
  requested) on the old one is unsubscribed and a 3 s grace passes (a stale server session would
  otherwise answer OPSP0002). The final attempt gives up without a further sleep. OPSP8996 (app key in
  use elsewhere) backs off for a long time instead of hammering the server.
- Subscribe/unsubscribe messages leave through one ordered outbox per socket, so an eviction's
  unsubscribe always reaches the server before the subscribe that needed its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

from kis.broker import trids as T
from kis.broker.crypto import aes_cbc_decrypt
from kis.broker.errors import KisError
from kis.broker.realtime import ParsedFrame, RealtimeParser
from kis.clock import Clock
from kis.logs import get_logger

log = get_logger("kis.broker.ws")

Key = tuple[str, str]  # (tr_id, tr_key)
NOTICE_TRS = {T.RT_NOTICE_LIVE, T.RT_NOTICE_PAPER}


@dataclass
class WsConfig:
    url: str
    max_slots: int = 41
    grace_s: float = 3.0
    app_ping_s: float = 30.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_attempts: int | None = None  # None: keep trying; N: give up after N failed sessions in a row
    appkey_in_use_backoff_s: float = 60.0
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 5.0
    heartbeat_stale_s: float = 35.0  # ~3 missed server PINGPONGs


@dataclass
class WsStats:
    connected: bool = False
    messages: int = 0  # data frames received
    records: int = 0
    control_messages: int = 0
    reconnect_count: int = 0
    connects: int = 0
    last_error: str | None = None
    last_message_mono: float | None = None  # last data frame
    last_inbound_mono: float | None = None  # anything from the server, PINGPONG included
    last_message_ts: str | None = None  # ISO time of the last data frame
    pingpong_received: int = 0
    pingpong_answered: int = 0
    app_pings_sent: int = 0
    acks: dict[str, int] = field(default_factory=dict)
    handler_errors: int = 0  # on_frame/on_notice raised (the session carries on)
    state: str = "idle"  # idle / connecting / subscribing / streaming / backoff / failed / stopped


class SlotAllocator:
    """At most ``capacity`` keys; pinned keys are never evicted, held keys (a stream client is reading them)
    not while held, others leave least-recently-used first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pinned: dict[Key, None] = {}  # insertion-ordered set
        self.lru: OrderedDict[Key, None] = OrderedDict()
        self.holds: Counter[Key] = Counter()

    def __contains__(self, key: object) -> bool:
        return key in self.pinned or key in self.lru

    def __len__(self) -> int:
        return len(self.pinned) + len(self.lru)

    def keys(self) -> list[Key]:
        return [*self.pinned, *self.lru]

    def pin(self, key: Key) -> list[Key]:
        """Keep ``key`` for good; returns the on-demand keys evicted to make room."""
        if key in self.pinned:
            return []
        if key in self.lru:
            del self.lru[key]
            self.pinned[key] = None
            return []
        if len(self.pinned) >= self.capacity:
            raise OverflowError("every slot is pinned")
        evicted = self._make_room()
        self.pinned[key] = None
        return evicted

    def touch(self, key: Key) -> list[Key]:
        """Use ``key`` (adding it if new); returns the keys evicted to make room."""
        if key in self.pinned:
            return []
        if key in self.lru:
            self.lru.move_to_end(key)
            return []
        if len(self.pinned) >= self.capacity:
            raise OverflowError("every slot is pinned")
        evicted = self._make_room()
        self.lru[key] = None
        return evicted

    def hold(self, key: Key) -> list[Key]:
        """Use ``key`` and keep it until as many ``unhold`` calls; returns the keys evicted to make room."""
        evicted = self.touch(key)
        self.holds[key] += 1
        return evicted

    def unhold(self, key: Key) -> None:
        if self.holds[key] <= 1:
            del self.holds[key]
        else:
            self.holds[key] -= 1

    def _make_room(self) -> list[Key]:
        if len(self) < self.capacity:
            return []
        free = [k for k in self.lru if k not in self.holds]
        need = len(self) - self.capacity + 1
        if len(free) < need:
            raise OverflowError("every slot is pinned or held")
        for old in free[:need]:
            del self.lru[old]
        return free[:need]

    def remove(self, key: Key) -> None:
        self.pinned.pop(key, None)
        self.lru.pop(key, None)
        self.holds.pop(key, None)


FrameHandler = Callable[[ParsedFrame], None]
NoticeHandler = Callable[[str, str], None]  # (tr_id, decrypted plaintext)

_SOCKET_ERRORS = (OSError, ConnectionClosed, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI,
                  KisError)


class KisWsClient:
    def __init__(self, config: WsConfig, approval_key: Callable[[bool], Awaitable[str]], clock: Clock,
                 parser: RealtimeParser, on_frame: FrameHandler, on_notice: NoticeHandler | None = None) -> None:
        self.config = config
        self._approval_key = approval_key
        self.clock = clock
        self.parser = parser
        self.on_frame = on_frame
        self.on_notice = on_notice
        self.slots = SlotAllocator(config.max_slots)
        self.held: set[Key] = set()  # acknowledged (OPSP0000/OPSP0002) on the current socket
        self.stats = WsStats()
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._streamed = False  # the current session got a healthy answer (ACK, data, PINGPONG)
        self._reconnect_now = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._sent: set[Key] = set()  # subscribe sent on the current socket and not unsubscribed since
        self._stale: set[Key] = set()  # held or requested on an earlier socket: release before re-subscribing
        self._outbox: asyncio.Queue[tuple[Key, str]] | None = None  # ordered (key, tr_type) for this socket
        self._approval_retried: set[Key] = set()
        self._pending_acks: dict[Key, asyncio.Future[bool]] = {}
        self._aes: dict[str, tuple[str, str]] = {}  # tr_id -> (key, iv) for encrypted TRs
        self._rng = random.Random()
        self._handler_logged_at: float | None = None

    # --- public API ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="kis-ws")
            log.info("ws_worker_start", url=self.config.url)

    async def stop(self) -> None:
        """Unsubscribe everything on the live socket, close it, and end the worker."""
        self._stopping = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._release_all(ws), timeout=self.config.ack_timeout_s)
            with contextlib.suppress(Exception):
                await ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._ws = None
        self._outbox = None
        self.held.clear()
        self._sent.clear()
        self.stats.connected = False
        self.stats.state = "stopped"
        log.info("ws_worker_stop")

    def request_reconnect(self) -> None:
        """Operator-requested reconnect: unsubscribe, grace, reconnect (the same path as a drop)."""
        self._reconnect_now.set()

    @property
    def heartbeat_fresh(self) -> bool:
        last = self.stats.last_inbound_mono
        return bool(self.stats.connected and last is not None
                    and self.clock.monotonic() - last < self.config.heartbeat_stale_s)

    def pin(self, tr_id: str, tr_key: str) -> None:
        """A key that must always be subscribed (KIS_WS_SYMBOLS, execution notices)."""
        key = (tr_id, tr_key)
        for old in self.slots.pin(key):
            self._queue(old, "2")
        self._queue(key, "1")

    def want(self, tr_id: str, tr_key: str) -> bool:
        """Subscribe on demand (LRU). Returns False if no slot can be made."""
        return self._take((tr_id, tr_key), self.slots.touch)

    def hold(self, tr_id: str, tr_key: str) -> bool:
        """Subscribe and keep the key from eviction until ``unhold`` (a stream client reads it). False if no
        slot can be made."""
        return self._take((tr_id, tr_key), self.slots.hold)

    def _take(self, key: Key, allocate: Callable[[Key], list[Key]]) -> bool:
        try:
            evicted = allocate(key)
        except OverflowError:
            return False
        for old in evicted:
            self._queue(old, "2")
        if key not in self._sent:
            self._queue(key, "1")
        return True

    def unhold(self, tr_id: str, tr_key: str) -> None:
        """The key stays subscribed (least recently used first to go) but can be evicted again."""
        self.slots.unhold((tr_id, tr_key))

    def release(self, tr_id: str, tr_key: str) -> bool:
        """Give back an on-demand slot: unsubscribed on the live socket (or when its ACK arrives). Pinned
        keys are never released this way; returns False for them and for keys that hold no slot."""
        key = (tr_id, tr_key)
        if key in self.slots.pinned or key in self.slots.holds or key not in self.slots:
            return False
        self.slots.remove(key)
        self._queue(key, "2")
        return True

    async def wait_held(self, tr_id: str, tr_key: str, within: float) -> bool:
        """True once ``(tr_id, tr_key)`` is acknowledged on the current socket, False if refused or not
        acknowledged within ``within`` seconds."""
        key = (tr_id, tr_key)
        if key in self.held:
            return True
        fut = self._pending_acks.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._pending_acks[key] = fut
        try:
            return await asyncio.wait_for(asyncio.shield(fut), within)
        except TimeoutError:
            return key in self.held

    # --- the connection loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0  # failed sessions in a row
        while not self._stopping:
            self._reconnect_now.clear()
            self._streamed = False
            appkey_in_use = False
            try:
                self.stats.state = "connecting"
                await self._session()
            except _AppKeyInUse:
                appkey_in_use = True
                self.stats.last_error = "OPSP8996 ALREADY IN USE appkey"
                log.error("ws_appkey_in_use", backoff_s=self.config.appkey_in_use_backoff_s)
            except _SOCKET_ERRORS as err:
                self.stats.last_error = f"{type(err).__name__}: {err}"[:200]
                log.warning("ws_disconnected", error=self.stats.last_error)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # an unexpected bug must not end the worker silently
                self.stats.last_error = f"{type(err).__name__}: {err}"[:200]
                log.exception("ws_session_failed")
            finally:
                self._end_socket()
            if self._stopping:
                break
            if self._streamed:
                attempt = 0  # a session that streamed is not a failed attempt; start the count afresh
            else:
                attempt += 1
                if self.config.max_attempts is not None and attempt >= self.config.max_attempts:
                    # The final attempt gives up at once: no sleep that nobody will use.
                    self.stats.state = "failed"
                    log.error("ws_gave_up", attempts=attempt, error=self.stats.last_error)
                    return
            self.stats.reconnect_count += 1
            delay = self._backoff(max(attempt, 1))
            if appkey_in_use:
                delay = max(delay, self.config.appkey_in_use_backoff_s)
            self.stats.state = "backoff"
            log.info("ws_backoff", attempt=attempt, delay_s=round(delay, 2))
            try:
                await asyncio.wait_for(self._reconnect_now.wait(), timeout=delay)
            except TimeoutError:
                pass

    def _backoff(self, attempt: int) -> float:
        base = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        return base * (0.5 + self._rng.random() / 2)  # equal jitter

    def _end_socket(self) -> None:
        """The socket is gone: whatever it held or requested may still be held by a stale server session."""
        self.stats.connected = False
        self._ws = None
        self._outbox = None
        self._stale |= self._sent | self.held
        self._sent.clear()
        self.held.clear()
        for fut in self._pending_acks.values():
            if not fut.done():
                fut.set_result(False)
        self._pending_acks.clear()

    async def _session(self) -> None:
        """One socket's life. ``self._streamed`` turns True once the server answers like a healthy session
        (a subscribe ACK, a data frame or a PINGPONG): only sessions that never did count as failed."""
        approval = await self._approval_key(False)
        log.info("ws_connect", url=self.config.url)
        ws = await asyncio.wait_for(
            websockets.connect(self.config.url, ping_interval=None, max_size=2**24, close_timeout=2),
            timeout=self.config.connect_timeout_s)
        self._ws = ws
        outbox: asyncio.Queue[tuple[Key, str]] = asyncio.Queue()
        self._outbox = outbox
        self._approval_retried.clear()
        self.stats.connects += 1
        self.stats.connected = True
        self.stats.last_inbound_mono = self.clock.monotonic()
        reader = asyncio.create_task(self._reader(ws), name="kis-ws-reader")
        pinger = asyncio.create_task(self._app_ping(ws), name="kis-ws-ping")
        writer: asyncio.Task[None] | None = None
        try:
            if self._stale:
                # Release what an earlier session may still hold on the server, then wait the grace.
                self.stats.state = "grace"
                stale = sorted(self._stale)
                for key in stale:
                    await self._send(ws, approval, key, "2")
                log.info("ws_unsubscribe_stale", keys=len(stale), grace_s=self.config.grace_s)
                await self._grace(reader)
                self._stale.clear()  # only once the whole grace passed on a live socket
            if self._stopping:
                return
            self.stats.state = "subscribing"
            for key in self.slots.keys():
                outbox.put_nowait((key, "1"))
            writer = asyncio.create_task(self._writer(ws, outbox), name="kis-ws-writer")
            self.stats.state = "streaming"
            reconnect = asyncio.create_task(self._reconnect_now.wait())
            try:
                done, _ = await asyncio.wait({reader, writer, reconnect}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                reconnect.cancel()
            if reader in done:
                reader.result()  # re-raise why the socket ended
                # A clean close by the server (e.g. an idle timeout): say so, it is the only trace.
                self.stats.last_error = f"closed by server: {ws.close_code} {ws.close_reason or ''}".strip()
                log.warning("ws_closed_by_server", code=ws.close_code, reason=ws.close_reason)
                return
            if writer in done:
                writer.result()  # the writer only ends when a send fails
                return
            # Operator reconnect: release everything on this socket first.
            log.info("ws_reconnect_requested")
            writer.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer
            await self._release_all(ws)
            await self._grace(reader)
        except (OSError, ConnectionClosed):
            # A send failed because the server closed the socket: the reader may know why (OPSP8996).
            if not reader.done():
                await asyncio.wait({reader}, timeout=1.0)
            if reader.done() and not reader.cancelled() and isinstance(reader.exception(), _AppKeyInUse):
                raise _AppKeyInUse() from None
            raise
        finally:
            for task in (pinger, reader, writer):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await task
            with contextlib.suppress(Exception):
                await ws.close()

    async def _grace(self, reader: asyncio.Task[None]) -> None:
        """Wait the grace period while still reading (ACKs, PINGPONG); fail if the socket dies."""
        done, _ = await asyncio.wait({reader}, timeout=self.config.grace_s)
        if reader in done:
            reader.result()
            raise ConnectionError("socket closed during grace")

    async def _release_all(self, ws: Any) -> None:
        """Unsubscribe every key held or requested on ``ws``."""
        approval = await self._approval_key(False)
        for key in sorted(self._sent | self.held):
            await self._send(ws, approval, key, "2")
            self._sent.discard(key)
            self.held.discard(key)

    async def _send(self, ws: Any, approval: str, key: Key, tr_type: str) -> None:
        msg = json.dumps({"header": {"approval_key": approval, "custtype": "P", "tr_type": tr_type,
                                     "content-type": "utf-8"},
                          "body": {"input": {"tr_id": key[0], "tr_key": key[1]}}})
        async with self._send_lock:
            await ws.send(msg)
        if tr_type == "1":
            log.info("ws_subscribe", tr_id=key[0], tr_key=key[1])
        else:
            log.info("ws_unsubscribe", tr_id=key[0], tr_key=key[1])

    def _queue(self, key: Key, tr_type: str) -> None:
        """Send later, in order, on the current socket; the next socket subscribes from the slots anyway."""
        if self._outbox is not None:
            self._outbox.put_nowait((key, tr_type))

    async def _writer(self, ws: Any, outbox: asyncio.Queue[tuple[Key, str]]) -> None:
        """Drains the outbox in order; decides at send time, so duplicates and reversed wishes drop out."""
        while True:
            key, tr_type = await outbox.get()
            if tr_type == "1":
                if self._stopping or key not in self.slots or key in self._sent:
                    continue
                self._sent.add(key)
            else:
                if key in self.slots or (key not in self._sent and key not in self.held):
                    continue
                self._sent.discard(key)
                self.held.discard(key)
            await self._send(ws, await self._approval_key(False), key, tr_type)

    async def _app_ping(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self.config.app_ping_s)
            stamp = self.clock.now().strftime("%Y%m%d%H%M%S")
            async with self._send_lock:
                await ws.send(json.dumps({"header": {"tr_id": T.PINGPONG, "datetime": stamp}}))
            self.stats.app_pings_sent += 1

    # --- inbound ------------------------------------------------------------------------------------

    async def _reader(self, ws: Any) -> None:
        first = True
        async for message in ws:
            now = self.clock.monotonic()
            self.stats.last_inbound_mono = now
            if isinstance(message, bytes):
                message = message.decode("utf-8", errors="replace")
            c = message[:1]
            if c == "0" or c == "1":
                self._on_data(message, now)
                if first:
                    first = False
                    log.info("ws_first_message", tr_id=message.split("|", 2)[1] if "|" in message else "")
            else:
                await self._on_control(ws, message)

    def _on_data(self, message: str, now: float) -> None:
        self._streamed = True
        self.stats.messages += 1
        self.stats.last_message_mono = now
        self.stats.last_message_ts = self.clock.now().isoformat()
        if message[0] == "1":
            parts = message.split("|", 3)
            if len(parts) != 4:
                self.parser._fail("not a data frame", message)
                return
            key_iv = self._aes.get(parts[1])
            if key_iv is None:
                self.parser._fail("encrypted frame before its ACK", message)
                return
            try:
                plain = aes_cbc_decrypt(parts[3], *key_iv)
            except ValueError:
                self.parser._fail("undecryptable notice", message)
                return
            self.stats.records += 1
            if self.on_notice is not None:
                try:
                    self.on_notice(parts[1], plain)
                except Exception:  # a consumer's bug must not drop the KIS session
                    self._handler_failed("ws_notice_handler_failed", parts[1])
            return
        parsed = self.parser.parse(message)
        if parsed is not None:
            self.stats.records += len(parsed.records)
            try:
                self.on_frame(parsed)
            except Exception:  # a consumer's bug must not drop the KIS session
                self._handler_failed("ws_frame_handler_failed", parsed.tr_id)

    def _handler_failed(self, event: str, tr_id: str) -> None:
        """Count every failure; log the traceback at most every 10 s (a broken consumer sees every frame)."""
        self.stats.handler_errors += 1
        now = self.clock.monotonic()
        if self._handler_logged_at is None or now - self._handler_logged_at >= 10.0:
            self._handler_logged_at = now
            log.exception(event, tr_id=tr_id, failures=self.stats.handler_errors)

    async def _on_control(self, ws: Any, text: str) -> None:
        self.stats.control_messages += 1
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        header = msg.get("header") if isinstance(msg, dict) else None
        if not isinstance(header, dict):
            self.parser._fail("bad control JSON", text)
            return
        tr_id = str(header.get("tr_id") or "")
        if tr_id == T.PINGPONG:
            self._streamed = True
            self.stats.pingpong_received += 1
            async with self._send_lock:
                await ws.send(text)  # echo, as python-kis/mojito do; KIS accepts it
            self.stats.pingpong_answered += 1
            return
        body = msg.get("body") if isinstance(msg.get("body"), dict) else {}  # type: ignore[union-attr]
        code = str(body.get("msg_cd") or "")
        self.stats.acks[code] = self.stats.acks.get(code, 0) + 1
        key = (tr_id, str(header.get("tr_key") or ""))
        if code == "OPSP8996":
            raise _AppKeyInUse()
        if code in ("OPSP0000", "OPSP0002"):
            self._streamed = True
            self.held.add(key)
            output = body.get("output") if isinstance(body.get("output"), dict) else {}
            if header.get("encrypt") == "Y" and output.get("key") and output.get("iv"):
                self._aes[tr_id] = (str(output["key"]), str(output["iv"]))
            if key not in self.slots:
                self._queue(key, "2")  # evicted while the ACK was in flight: release it again
            self._resolve(key, True)
            log.info("ws_subscribe_ack", tr_id=key[0], tr_key=key[1], code=code)
        elif code == "OPSP0001":
            self.held.discard(key)
        elif code == "OPSP0003":
            # Unsubscribing what the server no longer has (e.g. after an unclean drop): nothing to do.
            self.held.discard(key)
            log.info("ws_unsubscribe_not_found", tr_id=key[0], tr_key=key[1])
        elif code == "OPSP0011":
            log.error("ws_invalid_approval_key", tr_id=key[0], tr_key=key[1])
            self._sent.discard(key)
            try:
                await self._approval_key(True)
            except KisError as err:
                self.stats.last_error = f"approval key: {err.code}"
                self._resolve(key, False)
                return
            if key in self.slots and key not in self._approval_retried:
                self._approval_retried.add(key)  # once per key and socket: no loop if the new key fails too
                self._queue(key, "1")
            else:
                self.stats.last_error = f"{code} {body.get('msg1', '')}".strip()
                self._resolve(key, False)
        elif code:
            self._sent.discard(key)
            self.stats.last_error = f"{code} {body.get('msg1', '')}".strip()
            log.warning("ws_control_error", tr_id=key[0], tr_key=key[1], code=code, msg=body.get("msg1"))
            self._resolve(key, False)

    def _resolve(self, key: Key, ok: bool) -> None:
        fut = self._pending_acks.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(ok)


class _AppKeyInUse(Exception):
    pass
