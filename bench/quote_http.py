"""Benchmark (b): ``GET /v1/quotes/{symbol}`` cache hits vs a bare FastAPI endpoint, same server.

Setup: the simulator in one child process (``kis sim`` equivalent, market open, ticking every 0.25 s);
the gateway in another (``create_app`` under uvicorn with the ``kis up`` server settings,
KIS_MARKET_OVERRIDE=open, 005930 pinned so it streams). Before serving, a bare route
``GET /bench/const`` returning a constant quote-shaped dict is added to the *same* app: same process,
same uvicorn, same response class — the only difference is the quote path itself (service dependency,
market check, cache lookup, ``Quote.as_dict``).

Measured, loopback only, load generators in separate processes:

1. Saturation throughput: ``wrk -t1 -c<conns>`` (keep-alive), gateway and bare alternated for
   ``--rounds`` rounds; the medians give the ratio gateway/bare (goal >= 0.8).
2. Latency at a fixed offered load (default 1,000 req/s): an open-loop generator (Python asyncio, raw
   keep-alive sockets, several connections) schedules request i at t0 + i/rate and measures each
   latency from that intended time (no coordinated omission), plus from the actual send.

3. App-only CPU per request: both routes called straight through ASGI in a fresh gateway child (no
   HTTP server, CPU time of the process, best of 5 batches): the quote path's own cost, much less
   sensitive to other load on the machine than wall-clock throughput.

Every answer is checked: status 200, and the gateway's /v1/metrics/quote must show only ws hits
(source kis-ws) and no REST fallback during the run.

    python bench/quote_http.py [--seconds 4] [--rounds 3] [--conns 32] [--rate 1000] [--rate-seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import _support as S
import httpx

SYMBOL = "005930"
QUOTE_PATH = f"/v1/quotes/{SYMBOL}"
CONST_PATH = "/bench/const"
# The bare endpoint returns a dict of the same shape and size as a quote answer.
CONST_BODY: dict[str, Any] = {
    "symbol": "005930", "market": "KR", "source": "kis-ws", "price": 71900.0, "change": 0.0,
    "change_rate": 0.0, "change_sign": "3", "open": 71900.0, "high": 72000.0, "low": 71800.0,
    "volume": 1234567, "ask": 72000.0, "bid": 71900.0, "trade_date": "20261122", "tick_time": "101500",
    "timestamp": "2026-11-22T10:15:00.123456+09:00", "age_ms": 123.4, "market_open": True,
}


# --- open-loop fixed-rate generator (child process) ------------------------------------------------

def _open_loop_child(port: int, path: str, rate: float, seconds: float, warmup: float, conns: int,
                     out: Any) -> None:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    out.send(runner(_open_loop(port, path, rate, seconds, warmup, conns)))
    out.close()


async def _open_loop(port: int, path: str, rate: float, seconds: float, warmup: float,
                     conns: int) -> dict[str, Any]:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench\r\n\r\n".encode()
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(conns):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        idle.put_nowait((reader, writer))
    clock = time.perf_counter
    samples: list[tuple[float, float, float, int]] = []  # (intended, sent, done, status)
    errors: list[str] = []

    async def one(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], intended: float) -> None:
        reader, writer = conn
        try:
            sent = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if m:
                await reader.readexactly(int(m.group(1)))
            samples.append((intended, sent, clock(), status))
            idle.put_nowait(conn)
        except Exception as err:  # a broken connection is reported, not retried
            errors.append(f"{type(err).__name__}: {err}")

    total = int(rate * (warmup + seconds))
    tasks = set()
    t0 = clock() + 0.05
    for i in range(total):
        intended = t0 + i / rate
        delay = intended - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await idle.get()  # none idle: this request starts late, and its latency says so
        task = asyncio.create_task(one(conn, intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=10)
    end = clock()
    measured = [s for s in samples if s[0] >= t0 + warmup]
    ok = [s for s in measured if s[3] == 200]
    span = (max(s[2] for s in measured) - min(s[0] for s in measured)) if measured else 0.0
    return {
        "offered_per_s": rate, "connections": conns, "requests": len(measured),
        "achieved_per_s": round(len(measured) / span, 1) if span else 0.0,
        "non_200": len(measured) - len(ok), "errors": errors[:5], "error_count": len(errors),
        "latency_from_intended": S.summary_ms([d - i for i, _, d, _ in ok]),
        "latency_from_send": S.summary_ms([d - s for _, s, d, _ in ok]),
        "max_start_lag_ms": round(max((s - i for i, s, _, _ in measured), default=0.0) * 1e3, 3),
        "wall_s": round(end - t0, 2),
    }


def open_loop(port: int, path: str, rate: float, seconds: float, warmup: float, conns: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_open_loop_child, args=(port, path, rate, seconds, warmup, conns, child),
                       daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(seconds + warmup + 30):
            raise RuntimeError("open-loop generator did not report")
        return parent.recv()  # type: ignore[no-any-return]
    finally:
        S.stop_process(proc)


# --- app-only CPU cost per request (child process, no HTTP server) -------------------------------------

def _asgi_cost_child(env: dict[str, str], n: int, out: Any) -> None:
    """Both routes called straight through ASGI, best of 5 x n: the app's own CPU time per request
    (``time.process_time``: every thread of the process, so a thread-pool hop counts too).

    Less sensitive to other load on the machine than throughput (best-of), and free of the HTTP
    server's share, so it shows the quote path's own cost more sharply than the end-to-end ratio.
    """
    S.quiet_logs()
    S.exit_with_parent()
    from kis.gateway.app import create_app

    app = create_app(S.make_settings(env), configure_logs=False)

    async def bench_const() -> dict[str, Any]:
        return CONST_BODY

    app.add_api_route(CONST_PATH, bench_const, methods=["GET"])

    async def call(path: str) -> int:
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80), "state": {}}
        await app(scope, receive, send)
        return status

    async def main() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            deadline = time.monotonic() + 30
            while await call(QUOTE_PATH) != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("in-process gateway never answered a quote")
                await asyncio.sleep(0.2)
            res: dict[str, Any] = {}
            for name, path in (("gateway", QUOTE_PATH), ("bare", CONST_PATH)):
                for _ in range(500):
                    await call(path)
                best = float("inf")
                for _ in range(5):
                    t0 = time.process_time()  # CPU of every thread here: robust to other load
                    for _ in range(n):
                        assert await call(path) == 200
                    best = min(best, time.process_time() - t0)
                res[f"{name}_cpu_us_per_request"] = round(best / n * 1e6, 1)
            res["ratio"] = round(res["bare_cpu_us_per_request"] / res["gateway_cpu_us_per_request"], 3)
            return res

    try:
        import uvloop

        out.send(uvloop.run(main()))
    except ImportError:  # pragma: no cover
        out.send(asyncio.run(main()))


def asgi_cost(env: dict[str, str], n: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_asgi_cost_child, args=(env, n, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(120):
            raise RuntimeError("ASGI cost child did not report")
        return parent.recv()  # type: ignore[no-any-return]
    finally:
        S.stop_process(proc)


# --- saturation: wrk --------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk(port: int, path: str, seconds: float, conns: int) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    sock_err = re.search(r"Socket errors:(.*)", out)
    lat = {q: _ms(v) for q, v in re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M)}
    return {"req_per_s": rps, "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sock_err.group(1).strip() if sock_err else "", "p50_ms": lat.get("50"),
            "p99_ms": lat.get("99")}


# --- the run ----------------------------------------------------------------------------------------

async def _ready(gw: httpx.AsyncClient, within_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            r = await gw.get(QUOTE_PATH)
            last = r.text
            if r.status_code == 200 and r.json().get("source") == "kis-ws":
                return r.json()  # type: ignore[no-any-return]
        except httpx.HTTPError as err:
            last = repr(err)
        await asyncio.sleep(0.2)
    raise RuntimeError(f"gateway never served a kis-ws quote for {SYMBOL}: {last}")


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    rest_port, ws_port, gw_port = S.free_port(), S.free_port(), S.free_port()
    tmp = tempfile.mkdtemp(prefix="kis-bench-quote-")
    env = S.gateway_env(tmp, f"http://127.0.0.1:{rest_port}", f"ws://127.0.0.1:{ws_port}",
                        KIS_MARKET_OVERRIDE="open", KIS_WS_SYMBOLS=SYMBOL)
    sim = ctx.Process(target=S.run_sim, args=(rest_port, ws_port, {"tick_interval_s": 0.25}), daemon=True)
    gateway = ctx.Process(target=S.run_gateway, args=(gw_port, env, CONST_BODY), daemon=True)
    sim.start()
    try:
        await S.wait_port(rest_port)
        await S.wait_port(ws_port)
        gateway.start()
        await S.wait_port(gw_port, 30)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw_port}", timeout=10) as gw:
            sample = await _ready(gw)
            const = (await gw.get(CONST_PATH)).json()
            before = (await gw.get("/v1/metrics/quote")).json()
            loop = asyncio.get_running_loop()
            paths = {"gateway": QUOTE_PATH, "bare": CONST_PATH}
            # Warm both routes (code paths, connection setup), then alternate to spread the noise evenly.
            for path in paths.values():
                await loop.run_in_executor(None, wrk, gw_port, path, 1, args.conns)
            sat: dict[str, list[dict[str, Any]]] = {"gateway": [], "bare": []}
            for _ in range(args.rounds):
                for name, path in paths.items():
                    sat[name].append(await loop.run_in_executor(None, wrk, gw_port, path, args.seconds, args.conns))
            fixed = {}
            for name, path in paths.items():
                fixed[name] = await loop.run_in_executor(None, open_loop, gw_port, path, args.rate,
                                                         args.rate_seconds, args.rate_warmup, args.rate_conns)
            after = (await gw.get("/v1/metrics/quote")).json()
            final = (await gw.get(QUOTE_PATH)).json()
        # The served gateway must go first: one KIS WebSocket session (and one lease) per app key.
        S.stop_process(gateway)
        app_only = await asyncio.get_running_loop().run_in_executor(None, asgi_cost, env, args.asgi_n)
    finally:
        S.stop_process(gateway)
        S.stop_process(sim)
        shutil.rmtree(tmp, ignore_errors=True)

    med = {name: statistics.median(r["req_per_s"] for r in runs) for name, runs in sat.items()}
    quote_requests = sum(r["requests"] for r in sat["gateway"]) + fixed["gateway"]["requests"]
    hits = after["ws_quote_hits"] - before["ws_quote_hits"]
    return {
        "symbol": SYMBOL,
        "sample_quote_source": sample["source"], "final_quote_source": final["source"],
        "response_bytes": {"gateway": len(json.dumps(final)), "bare": len(json.dumps(const))},
        "saturation": {
            "tool": f"wrk -t1 -c{args.conns} -d{args.seconds:g}s, {args.rounds} alternating rounds",
            "gateway_req_per_s": round(med["gateway"]), "bare_req_per_s": round(med["bare"]),
            "ratio": round(med["gateway"] / med["bare"], 3) if med["bare"] else 0.0,
            "rounds": sat,
        },
        "fixed_rate": fixed,
        "app_only_asgi": app_only,
        "gateway_metrics_delta": {
            "quote_requests": after["quote_requests"] - before["quote_requests"],
            "ws_quote_hits": hits,
            "rest_fallbacks": after["rest_fallbacks"] - before["rest_fallbacks"],
            "fallback_reasons_after": after["fallback_reasons"],
        },
        "quote_requests_sent_measured_only": quote_requests,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0, help="wrk duration per saturation round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating gateway/bare saturation rounds")
    ap.add_argument("--conns", type=int, default=32, help="wrk keep-alive connections")
    ap.add_argument("--rate", type=float, default=1000.0, help="fixed offered load, requests/s")
    ap.add_argument("--rate-seconds", type=float, default=8.0, help="measured seconds at the fixed rate")
    ap.add_argument("--rate-warmup", type=float, default=1.0, help="seconds at the fixed rate not measured")
    ap.add_argument("--rate-conns", type=int, default=16, help="open-loop generator connections")
    ap.add_argument("--asgi-n", type=int, default=2000, help="calls per best-of-5 batch, app-only cost")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    load_before = os.getloadavg()[0]
    result = asyncio.run(bench(args))
    result["loadavg_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # other work on the box
    print(json.dumps(result, indent=2))
    sat, fx = result["saturation"], result["fixed_rate"]
    clean = (result["gateway_metrics_delta"]["rest_fallbacks"] == 0 and result["final_quote_source"] == "kis-ws"
             and all(r["non_2xx"] == 0 for runs in sat["rounds"].values() for r in runs)
             and all(f["non_200"] == 0 and f["error_count"] == 0 for f in fx.values()))
    ok = sat["ratio"] >= 0.8 and clean
    g, b = fx["gateway"]["latency_from_intended"], fx["bare"]["latency_from_intended"]
    print(f"quote cache hit {sat['gateway_req_per_s']:,} req/s vs bare {sat['bare_req_per_s']:,} req/s: "
          f"ratio {sat['ratio']:.2f} (goal >= 0.8); at {args.rate:,.0f} req/s p50/p99 gateway "
          f"{g['p50_ms']:.2f}/{g['p99_ms']:.2f} ms, bare {b['p50_ms']:.2f}/{b['p99_ms']:.2f} ms"
          f"{'' if clean else ' (errors or non-kis-ws answers seen)'}: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
