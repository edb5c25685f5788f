"""Benchmark (d): REST quote fallback under the live 20 calls/s limit — paced, never rate-limited.

Setup: the simulator in a child process with the live limit (20 KIS calls/s per app key, sliding
one-second window, EGW00201 beyond it); the gateway in another child (uvicorn, KIS_MARKET_OVERRIDE=closed,
so every quote is a REST fallback, default KIS_REST_RATE_PER_S = 20). The gateway starts cold (no token
yet). Then this process sends ``--requests`` quote requests round-robin over the first ``--symbols`` KRX
codes of the simulator's master, ``--concurrency`` at a time on keep-alive connections.

Bench-only hooks in the simulator child (no change to ``src/``) timestamp every KIS call at its rate
gate (accepted or EGW00201) and every accepted inquire-price call, served on ``GET /__bench/calls``.

Reported, against the goals: EGW00201 count (goal 0); achieved KIS call rate over the busy window
(first to last accepted inquire-price call) as a fraction of the allowed 20/s (goal >= 0.90); the
busiest sliding one-second window; client answers 200 / 503 REST_RATE_LIMIT_COOLDOWN (shed, acceptable)
/ anything else (a 500 is a failure), with their latencies. The "baseline" is the limit itself: the
simulator's own limiter decides what 20/s means.

    python bench/rest_fallback_pacing.py [--requests 500] [--symbols 100] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import itertools
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from typing import Any

import _support as S
import httpx

INQUIRE_PRICE = "FHKST01010100"


def _hooks(server: Any) -> None:
    """Runs in the simulator child before it starts: timestamp the rate gate and the price handler."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    rest = server.rest
    gate: list[tuple[float, bool]] = []
    priced: list[float] = []
    orig_gate, orig_price = rest._rate_limit, rest.inquire_price

    def rate_limit(app_key: str) -> None:
        t = time.monotonic()
        try:
            orig_gate(app_key)
        except Exception:
            gate.append((t, False))
            raise
        gate.append((t, True))

    async def inquire_price(call: Any) -> Any:
        priced.append(time.monotonic())
        return await orig_price(call)

    async def calls(_request: Request) -> JSONResponse:
        return JSONResponse({"gate": gate, "inquire_price": priced})

    rest._rate_limit = rate_limit  # instance attributes: kis_call looks them up on self
    rest.inquire_price = inquire_price
    rest.app.router.routes.append(Route("/__bench/calls", calls, methods=["GET"]))


def max_in_window(times: list[float], window: float = 1.0) -> tuple[int, float]:
    """Most events in any half-open window [t, t + window) — what a sliding-window limiter counts —
    and where that window starts (seconds after the first event)."""
    best, at = 0, 0.0
    for i, t in enumerate(times):
        n = bisect.bisect_left(times, t + window, lo=i) - i
        if n > best:
            best, at = n, t - times[0]
    return best, at


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from kis.sim.symbols import KRX_SYMBOLS

    codes = [s.code for s in KRX_SYMBOLS[:args.symbols]]
    if len(codes) < args.symbols:
        raise SystemExit(f"the simulator's master has only {len(codes)} KRX symbols")
    ctx = mp.get_context("spawn")
    rest_port, ws_port, gw_port = S.free_port(), S.free_port(), S.free_port()
    tmp = tempfile.mkdtemp(prefix="kis-bench-rest-")
    env = S.gateway_env(tmp, f"http://127.0.0.1:{rest_port}", f"ws://127.0.0.1:{ws_port}",
                        KIS_MARKET_OVERRIDE="closed", KIS_WS_SYMBOLS="005930")
    sim_config = {"tick_interval_s": 0.25, "rate_limit_per_s": args.limit}
    sim = ctx.Process(target=S.run_sim, args=(rest_port, ws_port, sim_config, _hooks), daemon=True)
    gateway = ctx.Process(target=S.run_gateway, args=(gw_port, env), daemon=True)
    sim.start()
    results: list[tuple[float, float, int, str]] = []  # (start, end, status, code)
    try:
        await S.wait_port(rest_port)
        await S.wait_port(ws_port)
        gateway.start()
        await S.wait_port(gw_port, 30)
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw_port}", timeout=30, limits=limits) as gw, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{rest_port}", timeout=30) as simc:
            deadline = time.monotonic() + 30
            while (await gw.get("/v1/session/status")).json().get("role") != "owner":
                if time.monotonic() > deadline:
                    raise RuntimeError("gateway never became the session owner")
                await asyncio.sleep(0.1)
            before = (await simc.get("/__sim/stats")).json()
            queue = iter(range(args.requests))

            async def worker() -> None:
                for i in queue:
                    t0 = time.monotonic()
                    try:
                        r = await gw.get(f"/v1/quotes/{codes[i % len(codes)]}")
                        status = r.status_code
                        code = "" if status == 200 else str(r.json().get("code", ""))
                    except httpx.HTTPError as err:
                        status, code = 0, type(err).__name__
                    results.append((t0, time.monotonic(), status, code))

            t_start = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(args.concurrency))),
                                   timeout=args.timeout)
            t_end = time.monotonic()
            stats = (await simc.get("/__sim/stats")).json()
            calls = (await simc.get("/__bench/calls")).json()
            metrics = (await gw.get("/v1/metrics/quote")).json()
    finally:
        S.stop_process(gateway)
        S.stop_process(sim)
        shutil.rmtree(tmp, ignore_errors=True)

    priced = sorted(calls["inquire_price"])
    accepted = sorted(t for t, ok in calls["gate"] if ok)
    rejected = [t for t, ok in calls["gate"] if not ok]
    span = priced[-1] - priced[0] if len(priced) > 1 else 0.0
    busiest = max_in_window(accepted)
    rate = (len(priced) - 1) / span if span else 0.0
    by_status = collections.Counter(s for _, _, s, _ in results)
    by_code = collections.Counter(f"{s} {c}".strip() for _, _, s, c in results if s != 200)
    lat = {str(s): S.summary_ms([e - b for b, e, st, _ in results if st == s]) for s in sorted(by_status)}
    buckets = collections.Counter(int(t - priced[0]) for t in priced) if priced else {}
    rest_errors = {k: v - before["rest_errors"].get(k, 0) for k, v in stats["rest_errors"].items()}
    shed_503 = by_code.get("503 REST_RATE_LIMIT_COOLDOWN", 0)
    return {
        "requests": len(results), "symbols": len(codes), "concurrency": args.concurrency,
        "allowed_per_s": args.limit, "client_wall_s": round(t_end - t_start, 2),
        "egw00201": stats["rest_errors"].get("EGW00201", 0),
        "rest_errors": rest_errors,
        "kis_price_calls": stats["rest_calls"].get(INQUIRE_PRICE, 0),
        "token_issuances": stats["token_issuances"],
        "busy_window_s": round(span, 3),
        "achieved_calls_per_s": round(rate, 2),
        "fraction_of_allowed": round(rate / args.limit, 3),
        "max_calls_in_any_1s": busiest[0], "busiest_1s_window_starts_at_s": round(busiest[1], 3),
        "mean_interval_ms": round(span / (len(priced) - 1) * 1e3, 2) if len(priced) > 1 else None,
        "pacer_interval_ms": round(1e3 / (args.limit * 0.95), 2),
        "first_gaps_ms": [round((b - a) * 1e3, 1) for a, b in itertools.pairwise(priced[:6])],
        "gate_rejections": len(rejected),
        "calls_per_second_bucket": [buckets.get(i, 0) for i in range(int(span) + 1)] if priced else [],
        "answers": {"200": by_status.get(200, 0), "503_rate_limit_cooldown": shed_503,
                    "other": {k: v for k, v in by_code.items() if k != "503 REST_RATE_LIMIT_COOLDOWN"}},
        "latency_by_status": lat,
        "gateway_metrics": {k: metrics[k] for k in ("quote_requests", "rest_fallbacks", "rest_calls",
                                                    "rest_rate_limited", "fallback_reasons")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--symbols", type=int, default=100, help="distinct KRX codes, round-robin")
    ap.add_argument("--concurrency", type=int, default=50, help="client requests in flight")
    ap.add_argument("--limit", type=int, default=20, help="the simulator's KIS calls/s per app key (live: 20)")
    ap.add_argument("--timeout", type=float, default=90.0, help="give up on the client run after this")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    result = asyncio.run(bench(args))
    result["loadavg_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # other work on the box
    print(json.dumps(result, indent=2))
    a = result["answers"]
    ok = result["egw00201"] == 0 and result["fraction_of_allowed"] >= 0.90 and not a["other"]
    print(f"{result['kis_price_calls']} KIS price calls in {result['busy_window_s']} s = "
          f"{result['achieved_calls_per_s']}/s ({result['fraction_of_allowed']:.0%} of {args.limit}/s, goal >= 90%); "
          f"EGW00201 {result['egw00201']} (goal 0); answers 200: {a['200']}, 503 shed: "
          f"{a['503_rate_limit_cooldown']}, other: {sum(a['other'].values())}: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
