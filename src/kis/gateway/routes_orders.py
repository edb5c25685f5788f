"""Order, risk, portfolio and kill-switch routes: parse, call the service, return."""

# No `from __future__ import annotations`: FastAPI resolves the Depends annotations at runtime.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from kis.gateway.errors import ApiError, FastJSONResponse
from kis.gateway.trading import Trading


async def _trading(request: Request) -> Trading:
    trading = getattr(request.app.state.runtime, "trading", None)
    if trading is None:
        raise ApiError(503, "KIS_NOT_CONFIGURED", "the order path is not configured (see /v1/session/status)")
    return trading  # type: ignore[no-any-return]


T = Annotated[Trading, Depends(_trading)]


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        import orjson

        return orjson.loads(raw)
    except ValueError:
        raise ApiError(400, "INVALID_JSON", "the body is not valid JSON") from None


router = APIRouter()


@router.post("/v1/orders")
async def place_order(request: Request, t: T,
                      idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> Response:
    status, body = await t.orders.place(await _json_body(request), idempotency_key)
    return FastJSONResponse(body, status_code=status)


@router.get("/v1/orders")
async def list_orders(t: T, status: str | None = None, account_id: str | None = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    return await t.orders.list(status, account_id, limit)


@router.post("/v1/orders/reconcile")
async def reconcile(t: T) -> dict[str, Any]:
    if not t.is_owner() or t.orders.broker is None:
        raise ApiError(503, "SESSION_STANDBY", "only the session owner reconciles", retryable=True)
    return await t.reconciler.run()


@router.get("/v1/orders/{order_id}")
async def get_order(t: T, order_id: str) -> dict[str, Any]:
    return await t.orders.get(order_id)


@router.post("/v1/orders/{order_id}/modify")
async def modify_order(request: Request, t: T, order_id: str) -> dict[str, Any]:
    return await t.orders.modify(order_id, await _json_body(request))


@router.post("/v1/orders/{order_id}/cancel")
async def cancel_order(t: T, order_id: str) -> dict[str, Any]:
    return await t.orders.cancel(order_id)


@router.post("/v1/risk/check")
async def risk_check(request: Request, t: T) -> dict[str, Any]:
    return await t.orders.risk_check(await _json_body(request))


@router.get("/v1/metrics/order")
async def order_metrics(t: T) -> dict[str, Any]:
    return await t.metrics()


@router.get("/v1/balances")
async def balances(t: T, account_id: str | None = None) -> list[dict[str, Any]]:
    return await t.portfolio.balances(account_id)


@router.get("/v1/positions")
async def positions(t: T, account_id: str | None = None) -> list[dict[str, Any]]:
    return await t.portfolio.positions(account_id)


@router.get("/v1/kill-switch")
async def kill_switch_status(t: T) -> dict[str, Any]:
    return await t.kill_switch.status()
