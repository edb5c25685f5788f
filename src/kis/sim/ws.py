"""The simulator's WebSocket face (reference §6): subscribe/ACK, PINGPONG, data frames, notices.

One session per app key (a second gets OPSP8996 and is closed); 41 registrations per session; ACKs
carry an AES key/iv; execution notices are AES-256-CBC encrypted; quote records are bundled several
to a frame with a zero-padded count, exactly as KIS sends them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

from kis.broker import codes as C
from kis.broker import trids as T
from kis.logs import get_logger
from kis.sim.engine import Simulator
from kis.sim.exchange import Notice
from kis.sim.frames import aes_encrypt, data_frame, new_key_iv

log = get_logger("kis.sim.ws")

QUOTE_TRS = {T.RT_PRICE_KR, T.RT_ASKING_KR, T.RT_PRICE_US}
NOTICE_TRS = {T.RT_NOTICE_LIVE, T.RT_NOTICE_PAPER, T.RT_NOTICE_US_LIVE, T.RT_NOTICE_US_PAPER}
DOMESTIC_NOTICE_TRS = {T.RT_NOTICE_LIVE, T.RT_NOTICE_PAPER}  # overseas notices carry overseas orders only
KNOWN_TRS = QUOTE_TRS | NOTICE_TRS
SEND_QUEUE_LIMIT = 20_000


class SimConnection(ServerConnection):
    """Records when the client last sent anything, and which control frames it sent."""

    last_rx: float = 0.0
    pongs: int = 0
    pings: int = 0

    def data_received(self, data: bytes) -> None:
        self.last_rx = asyncio.get_running_loop().time()
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        opcode = getattr(event, "opcode", None)
        if opcode is Opcode.PONG:
            self.pongs += 1
        elif opcode is Opcode.PING:
            self.pings += 1
        super().process_event(event)


class Session:
    def __init__(self, server: SimWsServer, conn: SimConnection) -> None:
        self.server = server
        self.conn = conn
        self.app_key: str | None = None
        self.subs: set[tuple[str, str]] = set()
        self.key, self.iv = new_key_iv()
        self.queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue(SEND_QUEUE_LIMIT)  # (due, text)
        self.dropped = 0
        self.pingpong_sent = 0
        self.pingpong_echoes = 0
        self.frames_sent = 0
        self.records_sent = 0
        self.closed_by_server = False

    @property
    def pingpong_answered(self) -> int:
        return self.pingpong_echoes + self.conn.pongs + self.conn.pings

    def enqueue(self, text: str) -> None:
        # The latency fault delays each data frame from the moment it is produced (due time), so frames
        # stay pipelined: latency must not turn into a throughput cap that backs up ACKs and PINGPONG.
        latency_ms = self.server.sim.faults.latency_ms
        due = time.monotonic() + latency_ms / 1000 if latency_ms > 0 and text[:1] in "01" else 0.0
        try:
            self.queue.put_nowait((due, text))
        except asyncio.QueueFull:
            self.dropped += 1

    def stats(self) -> dict[str, Any]:
        return {
            "app_key_tail": (self.app_key or "")[-4:],
            "subscriptions": sorted(f"{tr}:{key}" for tr, key in self.subs),
            "pingpong_sent": self.pingpong_sent,
            "pingpong_echoes": self.pingpong_echoes,
            "pongs": self.conn.pongs,
            "pings": self.conn.pings,
            "pingpong_answered": self.pingpong_answered,
            "frames_sent": self.frames_sent,
            "records_sent": self.records_sent,
            "dropped": self.dropped,
        }


def _ack(tr_id: str, tr_key: str, rt_cd: str, code: tuple[str, str], output: dict[str, str] | None = None,
         encrypt: str = "N", msg_suffix: str = "") -> str:
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": code[0], "msg1": code[1] + msg_suffix}
    if output is not None:
        body["output"] = output
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": encrypt}, "body": body},
                      ensure_ascii=False)


def _us_symbol(tr_key: str) -> str:
    """DNASAAPL / RBAQNVDA -> AAPL / NVDA (D|R + 3-letter exchange + symbol)."""
    return tr_key[4:] if len(tr_key) > 4 and tr_key[0] in "DR" else tr_key


class SimWsServer:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.sessions: set[Session] = set()
        self.by_app: dict[str, Session] = {}
        self.subscribers: dict[tuple[str, str], set[Session]] = {}
        self.ghosts: dict[str, dict[tuple[str, str], float]] = {}  # app key -> key -> deadline (loop time)
        self.pending: dict[tuple[str, str], list[str]] = {}
        self.counters: Counter[str] = Counter()
        self._server: Server | None = None
        sim.tick_listeners.append(self._on_tick)
        sim.flush_listeners.append(self._flush)
        sim.exchange.listeners.append(self._on_notice)

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        self._server = await serve(self._handle, host, port, create_connection=SimConnection,
                                   ping_interval=None, max_size=2**20, compression=None)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def stats(self) -> dict[str, Any]:
        return {"sessions": [s.stats() for s in self.sessions], "counters": dict(self.counters),
                "ghost_keys": sum(len(g) for g in self.ghosts.values())}

    # --- one connection -----------------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        assert isinstance(conn, SimConnection)
        loop = asyncio.get_running_loop()
        conn.last_rx = loop.time()
        session = Session(self, conn)
        self.sessions.add(session)
        self.counters["connections"] += 1
        tasks = [asyncio.create_task(self._writer(session)), asyncio.create_task(self._pingpong(session)),
                 asyncio.create_task(self._watchdog(session))]
        abnormal = False
        try:
            async for message in conn:
                if isinstance(message, str):
                    await self._on_message(session, message)
                if session.closed_by_server:
                    break
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            abnormal = conn.protocol.close_rcvd is None and not session.closed_by_server
            self._drop_session(session, abnormal)

    def _drop_session(self, session: Session, abnormal: bool) -> None:
        self.sessions.discard(session)
        if session.app_key and self.by_app.get(session.app_key) is session:
            del self.by_app[session.app_key]
        if abnormal and session.app_key and self.sim.faults.ws_stale_session and session.subs:
            deadline = asyncio.get_running_loop().time() + self.sim.faults.stale_grace_s
            held = self.ghosts.setdefault(session.app_key, {})
            for key in session.subs:
                held[key] = deadline
        for key in list(session.subs):
            self._unregister(session, key)

    async def _writer(self, session: Session) -> None:
        conn = session.conn
        while True:
            due, text = await session.queue.get()
            if due:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await conn.send(text)
            if text[:1] in "01":
                session.frames_sent += 1
                session.records_sent += int(text[text.index("|", 2) + 1:text.index("|", 2) + 4])

    async def _pingpong(self, session: Session) -> None:
        while True:
            await asyncio.sleep(self.sim.config.pingpong_interval_s)
            stamp = self.sim.clock.now().strftime("%Y%m%d%H%M%S")
            session.enqueue(json.dumps({"header": {"tr_id": T.PINGPONG, "datetime": stamp}}))
            session.pingpong_sent += 1

    async def _watchdog(self, session: Session) -> None:
        """Faults that end a session: drop after N s (abnormal), or idle timeout."""
        loop = asyncio.get_running_loop()
        opened = loop.time()
        while True:
            await asyncio.sleep(0.05)
            faults = self.sim.faults
            now = loop.time()
            if faults.ws_drop_after_s is not None and now - opened >= faults.ws_drop_after_s:
                self.counters["dropped_by_fault"] += 1
                session.conn.transport.abort()  # no close frame: the client sees 1006
                return
            idle_s = faults.ws_idle_timeout_s
            if idle_s is not None and now - session.conn.last_rx >= idle_s:
                self.counters["idle_timeouts"] += 1
                session.closed_by_server = True
                await session.conn.close(1000, "idle timeout")
                return

    # --- control messages ---------------------------------------------------------------------------

    async def _on_message(self, session: Session, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            session.enqueue(_ack("(null)", "", "9", C.WS_JSON_PARSE))
            return
        if not isinstance(msg, dict):
            session.enqueue(_ack("(null)", "", "9", C.WS_JSON_PARSE))
            return
        header = msg.get("header")
        if not isinstance(header, dict):
            session.enqueue(_ack("(null)", "", "9", C.WS_MISSING_HEADER))
            return
        if header.get("tr_id") == T.PINGPONG:
            session.pingpong_echoes += 1
            return
        body = msg.get("body")
        if not isinstance(body, dict):
            session.enqueue(_ack("(null)", "", "9", C.WS_MISSING_BODY))
            return
        inp = body.get("input")
        if not isinstance(inp, dict):
            session.enqueue(_ack("(null)", "", "9", C.WS_MISSING_INPUT))
            return
        tr_id = str(inp.get("tr_id") or "")
        if "tr_key" not in inp:
            session.enqueue(_ack(tr_id or "(null)", "", "9", C.WS_MISSING_TR_KEY))
            return
        tr_key = str(inp.get("tr_key") or "").strip()
        approval = str(header.get("approval_key") or "")
        app_key = self.sim.auth.approvals.get(approval)
        if app_key is None:
            session.enqueue(_ack(tr_id, tr_key, "1", C.WS_INVALID_APPROVAL, msg_suffix=approval))
            return
        if session.app_key is None:
            holder = self.by_app.get(app_key)
            if holder is not None and holder is not session:
                self.counters["appkey_in_use"] += 1
                await session.conn.send(json.dumps({
                    "header": {"tr_id": "(null)", "tr_key": "", "encrypt": "N"},
                    "body": {"rt_cd": "9", "msg_cd": C.WS_APPKEY_IN_USE[0], "msg1": C.WS_APPKEY_IN_USE[1]},
                }))
                session.closed_by_server = True
                await session.conn.close(1000)
                return
            session.app_key = app_key
            self.by_app[app_key] = session
        tr_type = str(header.get("tr_type") or "")
        if tr_type not in ("1", "2"):
            session.enqueue(_ack(tr_id, tr_key, "9", C.WS_INVALID_TR_TYPE))
            return
        if tr_id not in KNOWN_TRS:
            session.enqueue(_ack(tr_id or "(null)", tr_key, "9", C.WS_INVALID_TR_ID))
            return
        if not tr_key:
            session.enqueue(_ack(tr_id, tr_key, "1", C.WS_MANDATORY_MISSING))
            return
        if tr_type == "1":
            await self._subscribe(session, tr_id, tr_key)
        else:
            self._unsubscribe(session, tr_id, tr_key)

    def _ghost_held(self, app_key: str, key: tuple[str, str]) -> bool:
        held = self.ghosts.get(app_key)
        if not held or key not in held:
            return False
        if held[key] <= asyncio.get_running_loop().time():
            del held[key]
            return False
        return True

    async def _subscribe(self, session: Session, tr_id: str, tr_key: str) -> None:
        key = (tr_id, tr_key)
        assert session.app_key is not None
        encrypt = "Y" if tr_id in NOTICE_TRS else "N"
        output = {"iv": session.iv, "key": session.key}
        if key in session.subs or self._ghost_held(session.app_key, key):
            self.counters["already_subscribed"] += 1
            # python-kis reads body.output on every ACK; iv/key are the session's anyway.
            session.enqueue(_ack(tr_id, tr_key, "1", C.WS_ALREADY_SUBSCRIBED, output=output, encrypt=encrypt))
            return
        if len(session.subs) >= self.sim.config.max_registrations:
            self.counters["max_subscribe"] += 1
            session.enqueue(_ack(tr_id, tr_key, "1", C.WS_MAX_SUBSCRIBE, encrypt=encrypt))
            return
        if tr_id in NOTICE_TRS:
            expected = self.sim.auth.hts_id(session.app_key)
            if expected is not None and tr_key != expected:
                # The real server drops the socket on a wrong HTS ID ("No close frame received").
                self.counters["wrong_hts_id"] += 1
                session.closed_by_server = True
                session.conn.transport.abort()
                return
        session.subs.add(key)
        self.subscribers.setdefault(key, set()).add(session)
        market_key = self._market_key(tr_id, tr_key)
        if market_key:
            self.sim.interest[market_key] += 1
        self.counters["subscribes"] += 1
        session.enqueue(_ack(tr_id, tr_key, "0", C.WS_SUBSCRIBE_OK, output=output, encrypt=encrypt))

    def _unsubscribe(self, session: Session, tr_id: str, tr_key: str) -> None:
        key = (tr_id, tr_key)
        assert session.app_key is not None
        encrypt = "Y" if tr_id in NOTICE_TRS else "N"  # every ACK of a notice TR says "Y", as on subscribe
        if key in session.subs:
            self._unregister(session, key)
        elif self._ghost_held(session.app_key, key):
            del self.ghosts[session.app_key][key]
        else:
            session.enqueue(_ack(tr_id, tr_key, "1", C.WS_UNSUBSCRIBE_NOT_FOUND, encrypt=encrypt))
            return
        self.counters["unsubscribes"] += 1
        session.enqueue(_ack(tr_id, tr_key, "0", C.WS_UNSUBSCRIBE_OK,
                             output={"iv": session.iv, "key": session.key}, encrypt=encrypt))

    def _unregister(self, session: Session, key: tuple[str, str]) -> None:
        session.subs.discard(key)
        subs = self.subscribers.get(key)
        if subs is not None:
            subs.discard(session)
            if not subs:
                del self.subscribers[key]
        market_key = self._market_key(*key)
        if market_key and self.sim.interest[market_key] > 0:
            self.sim.interest[market_key] -= 1

    @staticmethod
    def _market_key(tr_id: str, tr_key: str) -> tuple[str, str] | None:
        if tr_id in (T.RT_PRICE_KR, T.RT_ASKING_KR):
            return ("KR", tr_key)
        if tr_id == T.RT_PRICE_US:
            return ("US", _us_symbol(tr_key))
        return None

    # --- realtime data ------------------------------------------------------------------------------

    def _on_tick(self, market: str, code: str) -> None:
        m = self.sim.market
        if market == "KR":
            for tr_id in (T.RT_PRICE_KR, T.RT_ASKING_KR):
                key = (tr_id, code)
                if key in self.subscribers:
                    record = m.h0stcnt0(code) if tr_id == T.RT_PRICE_KR else m.h0stasp0(code)
                    self.pending.setdefault(key, []).append(record)
        else:
            for (tr_id, tr_key) in self.subscribers:
                if tr_id == T.RT_PRICE_US and _us_symbol(tr_key) == code:
                    record = m.hdfscnt0(code)
                    rsym, rest = record.split("^", 1)
                    if rsym != tr_key:  # realtime (R…) and day-session keys echo the subscribed key
                        record = f"{tr_key}^{rest}"
                    self.pending.setdefault((tr_id, tr_key), []).append(record)

    def _flush(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        if self.sim.faults.ws_silent:
            return
        for (tr_id, tr_key), records in pending.items():
            sessions = self.subscribers.get((tr_id, tr_key))
            if not sessions:
                continue
            for i in range(0, len(records), 999):
                frame = data_frame(tr_id, records[i:i + 999])
                for session in sessions:
                    session.enqueue(frame)

    def _on_notice(self, notice: Notice) -> None:
        session = self.by_app.get(notice.app_key)
        if session is None or self.sim.faults.ws_silent:
            return
        for tr_id, tr_key in session.subs:
            if tr_id in DOMESTIC_NOTICE_TRS:
                record = self._notice_record(notice, tr_key)
                session.enqueue(f"1|{tr_id}|001|{aes_encrypt(record, session.key, session.iv)}")

    def _notice_record(self, n: Notice, hts_id: str) -> str:
        o = n.order
        fill = n.kind == "fill"
        name = self.sim.market.krx[o.code].info.name
        return "^".join((
            hts_id, o.account.number, o.odno, o.orgn_odno, o.side, o.rvse_cncl, o.dvsn, "0", o.code,
            f"{n.qty:010d}", f"{(n.price if fill else o.price):09d}", n.hhmmss, "1" if n.refused else "0",
            "2" if fill else "1", "2" if fill else "1", "06010", f"{o.qty:09d}", o.account.name, "", "1", "Y",
            "", "10", "", name, f"{(o.price if fill else 0):09d}",
        ))

