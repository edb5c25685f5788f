"""Shared plumbing for the gateway benchmarks: ports, child processes, percentiles.

Not a benchmark itself. The scripts in ``bench/`` import it as ``_support`` (the script's directory is
``sys.path[0]``; ``multiprocessing`` spawn children inherit that path).

Child processes are started with the ``spawn`` context, so each one is a fresh interpreter that owns
one event loop, as the real processes (``kis sim``, ``uvicorn app.main:app``) do.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

# Credentials the simulator accepts (it checks shape, not values, without a credentials file).
APP_KEY = "PSk" + "x" * 33
APP_SECRET = "s" * 180
ACCOUNT = "12345678-01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"port {port} did not open within {within_s}s")


def quiet_logs() -> None:
    """Children log warnings only, to stderr, so stdout stays the benchmark's JSON."""
    from kis.logs import configure_logging

    configure_logging("WARNING", stream=sys.stderr)


def exit_with_parent() -> None:
    """In a child: exit if the benchmark process dies (a killed parent cannot stop its children)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def stop_process(proc: Any, timeout: float = 10.0) -> None:
    """SIGTERM (graceful: uvicorn runs the lifespan shutdown), then SIGKILL if it hangs."""
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()


# --- the simulator, as a child process -------------------------------------------------------------

def run_sim(rest_port: int, ws_port: int, config: dict[str, Any],
            setup: Callable[[Any], None] | None = None) -> None:
    """Child process: a SimServer on loopback, like ``kis sim`` (plain asyncio loop).

    ``setup(server)`` runs before the servers start (a module-level function, so spawn can pickle it);
    benchmarks use it to add timestamp hooks or an extra admin route without touching ``src/``.
    """
    quiet_logs()
    exit_with_parent()
    from kis.sim.engine import SimConfig
    from kis.sim.server import SimServer

    async def main() -> None:
        server = SimServer(SimConfig(**config), rest_port=rest_port, ws_port=ws_port)
        if setup is not None:
            setup(server)
        await server.serve_forever()

    asyncio.run(main())


# --- the gateway, as a child process ---------------------------------------------------------------

def gateway_env(tmp: str, rest_url: str, ws_url: str, **extra: str) -> dict[str, str]:
    """Settings for a gateway pointed at an external simulator (KIS_REST_URL/KIS_WS_URL)."""
    return {"KIS_ENV": "sim", "KIS_REST_URL": rest_url, "KIS_WS_URL": ws_url, "KIS_APP_KEY": APP_KEY,
            "KIS_APP_SECRET": APP_SECRET, "KIS_ACCOUNT_NO": ACCOUNT, "KIS_DB_URL": f"sqlite:///{tmp}/gw.db",
            "KIS_STATE_DIR": f"{tmp}/state", "KIS_LOG_LEVEL": "WARNING", **extra}


def make_settings(env: dict[str, str]) -> Any:
    from kis.config import Settings

    return Settings(**{k.lower(): v for k, v in env.items()})


def run_gateway(port: int, env: dict[str, str], const_body: dict[str, Any] | None = None) -> None:
    """Child process: the gateway app under uvicorn with the ``kis up`` server settings.

    ``uvicorn.Config(app, host, port, log_config=None, access_log=False)``: loop and HTTP parser are
    uvicorn's "auto" choice (uvloop and httptools when installed), as for ``uvicorn app.main:app``.
    With ``const_body``, a bare route ``GET /bench/const`` returning that constant dict is added to the
    same app before serving: same process, same server, same middleware and response class.
    """
    quiet_logs()
    exit_with_parent()
    import uvicorn

    from kis.gateway.app import create_app

    app = create_app(make_settings(env), configure_logs=False)
    if const_body is not None:
        async def bench_const() -> dict[str, Any]:
            return const_body

        app.add_api_route("/bench/const", bench_const, methods=["GET"])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    server.run()


# --- statistics ------------------------------------------------------------------------------------

def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean of durations given in seconds, in milliseconds."""
    v = sorted(values_s)
    if not v:
        return {"n": 0}
    return {"n": len(v), "p50_ms": round(percentile(v, 50) * 1e3, 3), "p90_ms": round(percentile(v, 90) * 1e3, 3),
            "p99_ms": round(percentile(v, 99) * 1e3, 3), "p999_ms": round(percentile(v, 99.9) * 1e3, 3),
            "max_ms": round(v[-1] * 1e3, 3), "mean_ms": round(sum(v) / len(v) * 1e3, 3)}
