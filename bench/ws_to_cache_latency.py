"""Benchmark (c): simulator WebSocket send -> gateway QuoteCache holds the price (goal p99 < 5 ms).

Setup: the simulator in a child process (plain asyncio loop, like ``kis sim``; its own market loop is
parked so only forced trades produce frames); the gateway's ``GatewayRuntime`` in this process (uvloop
when installed, as under uvicorn) connected to it over loopback, with 005930 pinned.

The simulator child forces trades on 005930 at a fixed rate with distinct prices, exactly as
``POST /__sim/market/{code}`` does (set_price, tick listeners, flush). Bench-only hooks in the child (no
change to ``src/``) stamp each H0STCNT0 frame when it is enqueued for the session and when the session
writer calls ``connection.send``. In this process a listener on ``runtime.cache.listeners`` stamps the
moment the cache holds the record. Both sides read CLOCK_MONOTONIC (``time.monotonic()``), which is
one clock for every process on the machine. Frames and cache updates are paired in order and checked
by price.

Reported: send -> cache-visible latency p50/p99/max (the goal), and enqueue -> cache-visible. Baseline,
same run, same loops and library settings: a bare ``websockets`` server child sending a pre-built
frame of the same size at the same rate to a bare client here that only timestamps ``recv``.

    python bench/ws_to_cache_latency.py [--samples 2000] [--rate 200] [--warmup 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from typing import Any

import _support as S

CODE = "005930"
now = time.monotonic  # CLOCK_MONOTONIC on Linux: comparable across processes


def prices(n: int) -> list[int]:
    """Distinct consecutive prices on 005930's tick grid (100 won), well inside its daily limits."""
    return [60_000 + (i % 250) * 100 for i in range(n)]


def _price_of(frame: str) -> str:
    return frame.split("|", 3)[3].split("^", 3)[2]


# --- simulator child ---------------------------------------------------------------------------------

def _sim_child(rest_port: int, ws_port: int, pipe: Any) -> None:
    S.quiet_logs()
    S.exit_with_parent()
    from kis.sim import ws as sim_ws
    from kis.sim.engine import SimConfig
    from kis.sim.server import SimServer

    enqueued: list[tuple[float, str]] = []
    sent: list[tuple[float, float, str]] = []
    orig_send = sim_ws.SimConnection.send
    orig_enqueue = sim_ws.Session.enqueue

    async def send(self, message, text=None):  # type: ignore[no-untyped-def]
        if type(message) is str and message.startswith("0|H0STCNT0"):
            t0 = now()
            await orig_send(self, message, text=text)
            sent.append((t0, now(), message))
        else:
            await orig_send(self, message, text=text)

    def enqueue(self, text):  # type: ignore[no-untyped-def]
        if text.startswith("0|H0STCNT0"):
            enqueued.append((now(), text))
        orig_enqueue(self, text)

    sim_ws.SimConnection.send = send  # type: ignore[method-assign]
    sim_ws.Session.enqueue = enqueue  # type: ignore[method-assign]

    async def main() -> None:
        # The market loop steps once at start, then sleeps: only forced trades make frames.
        server = SimServer(SimConfig(tick_interval_s=3600.0), rest_port=rest_port, ws_port=ws_port)
        await server.start()
        sim = server.sim
        loop = asyncio.get_running_loop()
        pipe.send("ready")
        while True:
            cmd = await loop.run_in_executor(None, pipe.recv)
            if cmd[0] == "stop":
                break
            _, ps, rate = cmd
            enqueued.clear()
            sent.clear()
            t0 = now() + 0.01
            for i, p in enumerate(ps):
                delay = t0 + i / rate - now()
                await asyncio.sleep(delay if delay > 0 else 0)
                trade = sim.market.set_price(CODE, p)  # what POST /__sim/market/{code} does
                sim.exchange.on_trade(trade)
                for listener in sim.tick_listeners:
                    listener("KR", CODE)
                for flush in sim.flush_listeners:
                    flush()
            await asyncio.sleep(0.5)  # let the last frames go out
            pipe.send({"enqueued": [(t, _price_of(f)) for t, f in enqueued],
                       "sent": [(t0_, t1, _price_of(f)) for t0_, t1, f in sent],
                       "frame": sent[0][2] if sent else ""})
        await server.stop()

    asyncio.run(main())


# --- bare baseline server child ----------------------------------------------------------------------

def _bare_child(ws_port: int, template: str, pipe: Any) -> None:
    S.exit_with_parent()
    import websockets

    head, record = template.split("|", 3)[:3], template.split("|", 3)[3].split("^")

    def frame(p: int) -> str:
        record[2] = str(p)
        return "|".join(head) + "|" + "^".join(record)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        connected: asyncio.Future[Any] = loop.create_future()

        async def handler(conn: Any) -> None:
            await conn.recv()  # the subscribe message
            if not connected.done():
                connected.set_result(conn)
            await conn.wait_closed()

        # The simulator's WebSocket server settings (kis.sim.ws.SimWsServer.start).
        async with websockets.serve(handler, "127.0.0.1", ws_port, ping_interval=None, max_size=2**20,
                                    compression=None):
            pipe.send("ready")
            conn = await connected
            while True:
                cmd = await loop.run_in_executor(None, pipe.recv)
                if cmd[0] == "stop":
                    break
                _, ps, rate = cmd
                frames = [frame(p) for p in ps]
                sent: list[tuple[float, float, str]] = []
                t0 = now() + 0.01
                for i, f in enumerate(frames):
                    delay = t0 + i / rate - now()
                    await asyncio.sleep(delay if delay > 0 else 0)
                    ts = now()
                    await conn.send(f)
                    sent.append((ts, now(), str(ps[i])))
                await asyncio.sleep(0.5)
                pipe.send({"sent": sent})

    asyncio.run(main())


# --- pairing --------------------------------------------------------------------------------------

def worst(sent: list[tuple[float, str]], latencies: list[float], warmup: int, n: int = 5) -> list[list[float]]:
    """The n largest latencies as [seconds into the measured run, ms] — to tell stalls from noise."""
    t0 = sent[warmup][0] if len(sent) > warmup else 0.0
    rows = sorted(zip(sent[warmup:], latencies[warmup:], strict=False), key=lambda r: -r[1])[:n]
    return [[round(s[0] - t0, 3), round(lat * 1e3, 3)] for s, lat in rows]


def pair(sent: list[tuple[float, str]], seen: list[tuple[float, str]]) -> tuple[list[float], int]:
    """Latencies of in-order pairs with equal prices; returns (latencies, unmatched sends)."""
    out: list[float] = []
    j = unmatched = 0
    for t_sent, price in sent:
        k = j
        while k < len(seen) and seen[k][1] != price:
            k += 1
        if k == len(seen):
            unmatched += 1
            continue
        out.append(seen[k][0] - t_sent)
        j = k + 1
    return out, unmatched


async def _recv_pipe(pipe: Any, within_s: float) -> Any:
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, pipe.poll, within_s):
        raise RuntimeError("child did not answer")
    return pipe.recv()


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from kis.gateway.quotes import KR_LAYOUT
    from kis.gateway.runtime import GatewayRuntime

    ctx = mp.get_context("spawn")
    ps = prices(args.warmup + args.samples)
    drive_s = len(ps) / args.rate + 5

    # 1. Simulator -> gateway runtime.
    rest_port, ws_port = S.free_port(), S.free_port()
    parent, child = ctx.Pipe()
    sim = ctx.Process(target=_sim_child, args=(rest_port, ws_port, child), daemon=True)
    sim.start()
    tmp = tempfile.mkdtemp(prefix="kis-bench-ws-")
    runtime = None
    try:
        assert await _recv_pipe(parent, 30) == "ready"
        env = S.gateway_env(tmp, f"http://127.0.0.1:{rest_port}", f"ws://127.0.0.1:{ws_port}",
                            KIS_WS_SYMBOLS=CODE, KIS_MARKET_OVERRIDE="open")
        runtime = GatewayRuntime(S.make_settings(env))
        await runtime.start()
        deadline = time.monotonic() + 20
        while ("H0STCNT0", CODE) not in runtime.ws.held:  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway never held H0STCNT0:{CODE}")
            await asyncio.sleep(0.02)
        seen: list[tuple[float, str]] = []
        price_i = KR_LAYOUT.price

        def on_quote(q: Any) -> None:
            if q.symbol == CODE:
                seen.append((now(), q.record[price_i]))

        runtime.cache.listeners.append(on_quote)
        parent.send(("drive", ps, args.rate))
        sim_side = await _recv_pipe(parent, drive_s + 30)
        runtime.cache.listeners.remove(on_quote)
    finally:
        if runtime is not None:
            await runtime.stop()
        if sim.is_alive():
            parent.send(("stop",))
            sim.join(5)
        S.stop_process(sim)
        shutil.rmtree(tmp, ignore_errors=True)
    send_lat, gw_unmatched = pair([(t0, p) for t0, _, p in sim_side["sent"]], seen)
    enq_lat, _ = pair(sim_side["enqueued"], seen)
    send_call = [t1 - t0 for t0, t1, _ in sim_side["sent"]]
    template = sim_side["frame"]
    w = args.warmup

    # 2. Baseline: bare websockets server -> bare client, same frame size, same rate.
    import websockets

    bare_port = S.free_port()
    parent, child = ctx.Pipe()
    bare = ctx.Process(target=_bare_child, args=(bare_port, template, child), daemon=True)
    bare.start()
    try:
        assert await _recv_pipe(parent, 30) == "ready"
        received: list[tuple[float, str]] = []
        # The gateway's WebSocket client settings (kis.broker.ws.KisWsClient._session).
        async with websockets.connect(f"ws://127.0.0.1:{bare_port}", ping_interval=None, max_size=2**24,
                                      close_timeout=2) as ws:
            await ws.send("{}")

            async def reader() -> None:
                async for message in ws:
                    received.append((now(), message))  # type: ignore[arg-type]

            task = asyncio.create_task(reader())
            parent.send(("drive", ps, args.rate))
            bare_side = await _recv_pipe(parent, drive_s + 30)
            parent.send(("stop",))
            task.cancel()
    finally:
        S.stop_process(bare)
    bare_seen = [(t, _price_of(m)) for t, m in received]
    bare_lat, bare_unmatched = pair([(t0, p) for t0, _, p in bare_side["sent"]], bare_seen)

    gw = S.summary_ms(send_lat[w:])
    base = S.summary_ms(bare_lat[w:])
    return {
        "symbol": CODE, "rate_per_s": args.rate, "warmup_discarded": w, "frame_bytes": len(template),
        "gateway_send_to_cache": gw,
        "gateway_enqueue_to_cache": S.summary_ms(enq_lat[w:]),
        "sim_send_call": S.summary_ms(send_call[w:]),
        "bare_send_to_recv": base,
        "worst_gateway_at_s_ms": worst([(t0, p) for t0, _, p in sim_side["sent"]], send_lat, w)
        if not gw_unmatched else None,
        "worst_bare_at_s_ms": worst([(t0, p) for t0, _, p in bare_side["sent"]], bare_lat, w)
        if not bare_unmatched else None,
        "frames_sent": len(sim_side["sent"]), "cache_updates_seen": len(seen), "unmatched": gw_unmatched,
        "bare_frames_sent": len(bare_side["sent"]), "bare_unmatched": bare_unmatched,
        "p50_over_bare": round(gw["p50_ms"] / base["p50_ms"], 2) if base.get("p50_ms") else None,
        "p99_over_bare": round(gw["p99_ms"] / base["p99_ms"], 2) if base.get("p99_ms") else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=2000, help="measured forced trades")
    ap.add_argument("--rate", type=float, default=200.0, help="forced trades per second")
    ap.add_argument("--warmup", type=int, default=200, help="leading trades not measured")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                    help="event loop of the gateway side (uvicorn picks uvloop when installed)")
    args = ap.parse_args()
    runner: Any = asyncio.run
    if args.loop == "uvloop":
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            args.loop = "asyncio"
    S.quiet_logs()  # the gateway runtime logs here: warnings only, to stderr
    load_before = os.getloadavg()[0]
    result = runner(bench(args))
    result["loadavg_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # other work on the box
    result["gateway_loop"] = args.loop
    print(json.dumps(result, indent=2))
    g, b = result["gateway_send_to_cache"], result["bare_send_to_recv"]
    ok = g.get("n", 0) >= 1000 and g["p99_ms"] < 5.0 and result["unmatched"] == 0
    print(f"sim send -> gateway cache: p50 {g['p50_ms']:.3f} / p99 {g['p99_ms']:.3f} / max {g['max_ms']:.3f} ms "
          f"over {g['n']} frames; bare websockets send -> recv p50 {b['p50_ms']:.3f} / p99 {b['p99_ms']:.3f} ms; "
          f"goal p99 < 5 ms: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
