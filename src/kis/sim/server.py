"""Run the simulator's REST and WS servers on loopback, in-process (tests) or from ``kis sim``."""

from __future__ import annotations

import asyncio
import logging
import socket
from types import TracebackType

import uvicorn

from kis.logs import get_logger
from kis.sim.engine import SimConfig, Simulator
from kis.sim.rest import SimRestApp
from kis.sim.ws import SimWsServer

log = get_logger("kis.sim")


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit TCP_NODELAY: without it every keep-alive response after the first waits
    # ~40 ms (Nagle against the client's delayed ACK, headers and body being separate writes).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class SimServer:
    """The whole simulator: ``async with SimServer(SimConfig()) as sim: sim.rest_url, sim.ws_url``.

    Port 0 picks a free port; the bound ports are known once ``start()`` returns.
    """

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1", rest_port: int = 0,
                 ws_port: int = 0) -> None:
        self.sim = Simulator(config)
        self.host = host
        self.rest_port = rest_port
        self.ws_port = ws_port
        self.ws = SimWsServer(self.sim)
        self.rest = SimRestApp(self.sim, ws_stats=self.ws.stats)
        self._uvicorn: uvicorn.Server | None = None
        self._uvicorn_task: asyncio.Task[None] | None = None

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    async def start(self) -> None:
        logging.getLogger("websockets.server").setLevel(logging.WARNING)
        sock = _bind(self.host, self.rest_port)
        self.rest_port = sock.getsockname()[1]
        # h11, not httptools: httptools lowercases every header name on the wire, while the official KIS
        # client needs "Content-Type"/"Content-Length" capitalised (see kis.sim.envelope.kis_json).
        config = uvicorn.Config(self.rest.app, log_config=None, access_log=False, lifespan="off",
                                loop="none", http="h11", timeout_keep_alive=30)
        self._uvicorn = uvicorn.Server(config)
        self._uvicorn_task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]), name="sim-rest")
        while not self._uvicorn.started:
            if self._uvicorn_task.done():
                self._uvicorn_task.result()
                raise RuntimeError("simulator REST server stopped during start-up")
            await asyncio.sleep(0.005)
        self.ws_port = await self.ws.start(self.host, self.ws_port)
        await self.sim.start()
        log.info("sim_started", rest_url=self.rest_url, ws_url=self.ws_url, paper=self.sim.config.paper,
                 rate_limit_per_s=self.sim.config.rate_limit, session_mode=self.sim.config.session_mode)

    async def stop(self) -> None:
        await self.sim.stop()
        await self.ws.stop()
        if self._uvicorn is not None and self._uvicorn_task is not None:
            self._uvicorn.should_exit = True
            await self._uvicorn_task
            self._uvicorn = None

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
