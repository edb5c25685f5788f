"""Benchmark (a): realtime parse + cache apply vs a bare split loop, on the same real frames.

Frames: real captured H0STCNT0 records (reference §6.4.1), bundled 1, 4 and 11 per frame as KIS does.
Baseline: for each frame, ``split('|')`` then ``split('^')`` and slicing into records — the least any
parser must do. Measured: ``RealtimeParser.parse`` + ``QuoteCache.apply`` (the gateway's hot path).
Goal: ratio (baseline time / gateway time) >= 0.5.

    python bench/realtime_parse.py [--frames 200000]
"""

from __future__ import annotations

import argparse
import json
import time

from kis.broker.realtime import RealtimeParser
from kis.clock import SystemClock
from kis.gateway.quotes import QuoteCache

CAPTURED = [
    "005930^112616^62700^2^400^0.64^62700.41^62700^63000^62300^62700^62600^125^9694968^607878273600^25807^15918"
    "^-9889^93.01^4614191^4291558^1^0.45^63.03^090013^3^0^090646^5^-300^100741^2^400^20230324^20^N^71292^244009"
    "^2795345^2044512^0.16^5367918^180.61^0^^62700",
    "005930^115214^250500^5^-19500^-7.22^257548.62^266000^266500^248500^250500^250000^2^11701513^3013709268750"
    "^113664^103131^-10533^60.51^7129195^4313943^1^0.37^73.08^090025^5^-15500^090025^5^-16000^114825^2^2000"
    "^20260724^20^N^8930^67892^101158^466092^0.20^8331745^140.44^0^^266000",
]


def frames(n_each: int) -> list[str]:
    out = []
    for bundle in (1, 4, 11):
        records = [CAPTURED[i % 2] for i in range(bundle)]
        out.extend([f"0|H0STCNT0|{bundle:03d}|{'^'.join(records)}"] * n_each)
    return out


def bare(batch: list[str]) -> int:
    n = 0
    for frame in batch:
        parts = frame.split("|")
        values = parts[3].split("^")
        count = int(parts[2])
        size = len(values) // count
        for i in range(0, len(values), size):
            rec = values[i:i + size]
            n += len(rec[2])
    return n


def gateway(batch: list[str], parser: RealtimeParser, cache: QuoteCache) -> int:
    n = 0
    for frame in batch:
        parsed = parser.parse(frame)
        if parsed is not None:
            cache.apply(parsed)
            n += len(parsed.records)
    return n


def best_of(fn, repeats: int = 5) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60_000, help="frames per bundle size")
    args = ap.parse_args()
    batch = frames(args.frames // 3)
    records = sum(int(f[11:14]) for f in batch)
    parser = RealtimeParser()
    cache = QuoteCache(SystemClock())
    t_bare = best_of(lambda: bare(batch))
    t_gw = best_of(lambda: gateway(batch, parser, cache))
    assert parser.failures == 0
    result = {"frames": len(batch), "records": records,
              "bare_records_per_s": round(records / t_bare), "gateway_records_per_s": round(records / t_gw),
              "ratio": round(t_bare / t_gw, 3), "goal": 0.5}
    print(json.dumps(result, indent=2))
    print(f"parse+cache {result['gateway_records_per_s']:,} rec/s vs bare split {result['bare_records_per_s']:,} "
          f"rec/s: ratio {result['ratio']} (goal >= 0.5) {'PASS' if result['ratio'] >= 0.5 else 'FAIL'}")


if __name__ == "__main__":
    main()
