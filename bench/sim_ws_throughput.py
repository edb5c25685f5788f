"""Benchmark: H0STCNT0 records/s the simulator pushes to one WebSocket client on loopback.

Baseline, measured in the same run: a bare `websockets` server that sends pre-built frames of the same
size in a tight loop (no market, no record building). The simulator's figure is reported absolute
(goal >= 20,000 records/s) and as a ratio to that baseline.

    python bench/sim_ws_throughput.py [--seconds 5] [--burst 50]

Servers run in child processes; the client runs here, so server and client use separate cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import time

import httpx
import websockets
from _support import free_port, wait_port


def _run_sim(rest_port: int, ws_port: int) -> None:
    from kis.sim.engine import SimConfig
    from kis.sim.server import SimServer

    async def main() -> None:
        server = SimServer(SimConfig(tick_interval_s=0.25), rest_port=rest_port, ws_port=ws_port)
        await server.serve_forever()

    asyncio.run(main())


def _run_bare(ws_port: int, frame: str) -> None:
    async def handler(conn) -> None:  # type: ignore[no-untyped-def]
        await conn.recv()  # the subscribe message
        while True:
            await conn.send(frame)

    async def main() -> None:
        async with websockets.serve(handler, "127.0.0.1", ws_port, ping_interval=None, compression=None):
            await asyncio.Event().wait()

    asyncio.run(main())


async def _count(url: str, subscribe: str, seconds: float, warmup: float = 0.5) -> tuple[float, int, str]:
    """Receive for ``seconds`` after a warm-up; returns (records/s, records, a sample frame)."""
    records = 0
    sample = ""
    async with websockets.connect(url, ping_interval=None, max_size=2**24, compression=None) as ws:
        await ws.send(subscribe)
        start = time.perf_counter() + warmup
        end = start + seconds
        counting = False
        while True:
            msg = await asyncio.wait_for(ws.recv(), timeout=10)
            now = time.perf_counter()
            if now >= end:
                break
            if not isinstance(msg, str) or not msg.startswith("0|"):
                continue
            if not counting and now >= start:
                counting = True
            if counting:
                records += int(msg[11:14])
                sample = msg
    return records / seconds, records, sample


async def bench(seconds: float, burst: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    rest_port, ws_port = free_port(), free_port()
    sim_proc = ctx.Process(target=_run_sim, args=(rest_port, ws_port), daemon=True)
    sim_proc.start()
    try:
        await wait_port(rest_port)
        await wait_port(ws_port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rest_port}") as http:
            r = await http.post("/oauth2/Approval", json={"grant_type": "client_credentials",
                                                          "appkey": "bench-app-key", "secretkey": "bench-secret"})
            approval = r.json()["approval_key"]
            await http.post("/__sim/feed", json={"tick_interval_s": 0.0, "burst": burst})
            subscribe = json.dumps({"header": {"approval_key": approval, "custtype": "P", "tr_type": "1",
                                               "content-type": "utf-8"},
                                    "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}})
            sim_rate, sim_records, sample = await _count(f"ws://127.0.0.1:{ws_port}", subscribe, seconds)
            stats = (await http.get("/__sim/stats")).json()
        dropped = sum(s["dropped"] for s in stats["ws"]["sessions"])
        fields = sample.split("|", 3)[3].split("^")
        assert len(fields) == 46 * int(sample[11:14]), "malformed H0STCNT0 frame"
    finally:
        sim_proc.kill()
        sim_proc.join()

    bare_port = free_port()
    bare_proc = ctx.Process(target=_run_bare, args=(bare_port, sample), daemon=True)
    bare_proc.start()
    try:
        await wait_port(bare_port)
        bare_rate, _, _ = await _count(f"ws://127.0.0.1:{bare_port}", "{}", seconds)
    finally:
        bare_proc.kill()
        bare_proc.join()
    return {"sim_records_per_s": sim_rate, "sim_records": sim_records, "sim_dropped_frames": dropped,
            "bare_records_per_s": bare_rate, "ratio": sim_rate / bare_rate if bare_rate else 0.0,
            "records_per_frame": int(sample[11:14])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=50, help="records per frame the simulator bundles")
    args = parser.parse_args()
    result = asyncio.run(bench(args.seconds, args.burst))
    print(json.dumps(result, indent=2))
    goal = 20_000
    print(f"simulator: {result['sim_records_per_s']:,.0f} H0STCNT0 records/s to one client "
          f"({result['records_per_frame']} per frame); bare websockets baseline: "
          f"{result['bare_records_per_s']:,.0f}/s; ratio {result['ratio']:.2f}; goal >= {goal:,}/s: "
          f"{'PASS' if result['sim_records_per_s'] >= goal else 'FAIL'}")
    sys.exit(0 if result["sim_records_per_s"] >= goal else 1)


if __name__ == "__main__":
    main()
