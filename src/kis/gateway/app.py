"""FastAPI app for port 8890. Routes are thin: parse, call the service, return."""

# No `from __future__ import annotations`: FastAPI resolves the Depends annotations at runtime.

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import Response
from sse_starlette.sse import EventSourceResponse

from kis.clock import Clock
from kis.config import Settings
from kis.gateway.errors import ApiError, FastJSONResponse, install_error_handlers
from kis.gateway.prometheus import make_registry, render
from kis.gateway.routes_orders import router as orders_router
from kis.gateway.runtime import GatewayRuntime
from kis.gateway.service import GatewayService
from kis.logs import configure_logging, get_logger

log = get_logger("kis.gateway")


async def _service(request: Request) -> GatewayService:
    return request.app.state.service  # type: ignore[no-any-return]


Svc = Annotated[GatewayService, Depends(_service)]


def create_app(settings: Settings | None = None, clock: Clock | None = None, configure_logs: bool = True,
               sim_server: Any = None) -> FastAPI:
    settings = settings or Settings()
    if configure_logs:
        configure_logging(settings.kis_log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = GatewayRuntime(settings, clock, sim_server)
        app.state.runtime = runtime
        app.state.service = GatewayService(runtime)
        app.state.registry = make_registry(app.state.service)
        try:
            await runtime.start()
            log.info("gateway_started", env=settings.kis_env.value,
                     role="owner" if runtime.lease and runtime.lease.is_owner else "standby")
            yield
        finally:
            await runtime.stop()
            log.info("gateway_stopped")

    app = FastAPI(title="KIS Trading Gateway", version="0.1.0", lifespan=lifespan,
                  default_response_class=FastJSONResponse)
    install_error_handlers(app)
    app.include_router(orders_router)

    def operator(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = settings.kis_operator_token.get_secret_value() if settings.kis_operator_token else None
        if not expected:
            raise ApiError(403, "OPERATOR_TOKEN_NOT_CONFIGURED",
                           "set KIS_OPERATOR_TOKEN to enable operator endpoints")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), expected):
            raise ApiError(401, "OPERATOR_AUTH_REQUIRED", "Authorization: Bearer <operator token> required")

    @app.get("/v1/session/status")
    async def session_status(svc: Svc) -> dict[str, Any]:
        return await svc.session_status()

    @app.get("/v1/session/live-readiness")
    async def live_readiness(svc: Svc) -> dict[str, Any]:
        return await svc.live_readiness()

    @app.post("/v1/session/reconnect", dependencies=[Depends(operator)])
    async def reconnect(svc: Svc) -> dict[str, Any]:
        return await svc.reconnect()

    @app.get("/v1/quotes/{symbol}")
    async def quote(request: Request, symbol: str, exchange: str = "NAS") -> FastJSONResponse:
        # The hottest route: no dependency resolution, the response rendered directly.
        return FastJSONResponse(await request.app.state.service.quote(symbol, exchange))

    @app.get("/v1/quotes")
    async def quotes(svc: Svc, symbols: Annotated[str, Query()] = "", exchange: str = "NAS") -> dict[str, Any]:
        return await svc.quotes(symbols, exchange)

    @app.get("/v1/metrics/quote")
    async def quote_metrics(svc: Svc) -> dict[str, Any]:
        return svc.quote_metrics()

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        return Response(render(request.app.state.registry), media_type="text/plain; version=0.0.4")

    @app.get("/v1/stream/quotes")
    async def stream_quotes(request: Request, svc: Svc, symbols: Annotated[str, Query()] = "") -> EventSourceResponse:
        first = await svc.quotes(symbols)  # validates, subscribes on demand, and gives each client a start
        names = [q["symbol"] for q in first["quotes"]]
        rt = request.app.state.runtime

        async def events() -> AsyncIterator[dict[str, str]]:
            # Taken here, not before: a generator that never starts never runs its ``finally``.
            queue = rt.fanout.subscribe(names)
            held = rt.quotes.hold(names)  # a streamed symbol keeps its realtime slot while this client reads
            try:
                for q in first["quotes"]:
                    yield {"event": "quote", "data": orjson.dumps(q).decode()}
                while True:
                    try:
                        q = await asyncio.wait_for(queue.get(), timeout=15)
                    except TimeoutError:
                        yield {"event": "ping", "data": "{}"}
                        continue
                    yield {"event": "quote",
                           "data": orjson.dumps(q.as_dict(rt.clock.monotonic(), True)).decode()}
            finally:
                rt.fanout.unsubscribe(names, queue)
                rt.quotes.unhold(held)

        return EventSourceResponse(events())

    return app
