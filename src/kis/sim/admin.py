"""Admin API outside the KIS paths (``/__sim/…``): faults, clock, prices, feed speed, counters.

Tests use it to count broker calls and to switch faults at runtime; it never answers on a KIS path.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from kis.sim.rest import SimRestApp


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(message: str, status: int = 400) -> Response:
    return _json({"error": message}, status)


async def _body(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def admin_routes(rest: SimRestApp) -> list[Route]:
    sim = rest.sim

    async def stats(_request: Request) -> Response:
        ex = sim.exchange
        return _json({
            "paper": sim.config.paper,
            "rate_limit_per_s": sim.config.rate_limit,
            "rest_calls": dict(sim.rest_calls),
            "rest_errors": dict(sim.rest_errors),
            "token_issuances": sim.auth.issuances,
            "approval_keys": len(sim.auth.approvals),
            "orders": len([o for o in ex.orders.values() if o.rvse_cncl == "0"]),
            "order_records": len(ex.orders),
            "ws": rest.ws_stats(),
            "clock": sim.clock.now().isoformat(),
            "kr_open": sim.kr_open(),
            "us_open": sim.us_open(),
        })

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            if body is None:
                return _error("body must be a JSON object")
            try:
                sim.faults.update(body)
            except KeyError as err:
                return _error(f"unknown fault {err.args[0]!r}; known: {', '.join(sim.faults.names())}")
            except ValueError as err:
                return _error(str(err))
            if body.get("rate_limit_storm_s"):
                sim.start_storm(sim.faults.rate_limit_storm_s)
        return _json(sim.faults.as_dict())

    async def expire_tokens(_request: Request) -> Response:
        return _json({"expired": sim.auth.expire_all()})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            if body is None:
                return _error("body must be a JSON object")
            try:
                if "advance_s" in body:
                    sim.clock.advance(float(body["advance_s"]))
                if "set" in body:
                    sim.clock.set_now(datetime.fromisoformat(str(body["set"])))
                sim.roll_day()  # a jump past midnight ends the day's open orders at once
                if "session_mode" in body:
                    if body["session_mode"] not in ("always", "krx"):
                        return _error("session_mode is 'always' or 'krx'")
                    sim.config.session_mode = body["session_mode"]
            except (TypeError, ValueError) as err:
                return _error(str(err))
        return _json({"now": sim.clock.now().isoformat(), "session_mode": sim.config.session_mode,
                      "kr_open": sim.kr_open(), "us_open": sim.us_open()})

    async def market(request: Request) -> Response:
        code = request.path_params["code"]
        st = sim.market.krx.get(code)
        if st is None:
            return _error(f"unknown symbol {code}", 404)
        if request.method == "POST":
            body = await _body(request)
            if body is None or not isinstance(body.get("price"), int) or body["price"] <= 0:
                return _error("body must be {\"price\": <positive int>}")
            trade = sim.market.set_price(code, body["price"])
            sim.exchange.on_trade(trade)
            for listener in sim.tick_listeners:
                listener("KR", code)
            for flush in sim.flush_listeners:
                flush()
        return _json({"code": code, "price": st.price, "base": st.base, "upper": st.upper, "lower": st.lower,
                      "acml_vol": st.acml_vol})

    async def feed(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            if body is None:
                return _error("body must be a JSON object")
            try:
                if "tick_interval_s" in body:
                    value = float(body["tick_interval_s"])
                    if value < 0:
                        raise ValueError("tick_interval_s must be >= 0")
                    sim.config.tick_interval_s = value
                if "burst" in body:
                    burst = int(body["burst"])
                    if not 0 <= burst <= 999:
                        raise ValueError("burst is 0..999")
                    sim.config.burst = burst
            except (TypeError, ValueError) as err:
                return _error(str(err))
            sim.feed_changed()
        return _json({"tick_interval_s": sim.config.tick_interval_s, "burst": sim.config.burst})

    async def account(request: Request) -> Response:
        number = request.path_params["account"].replace("-", "")
        acct = sim.exchange.accounts.get((number[:8], number[8:]))
        if acct is None:
            return _error("no such account", 404)
        orders = [o for o in sim.exchange.orders.values() if o.account is acct]
        return _json({
            "cash": acct.cash, "reserved_cash": acct.reserved_cash,
            "holdings": {c: {"qty": h.qty, "sellable": h.sellable, "cost": h.cost}
                         for c, h in acct.holdings.items()},
            "orders": [{"odno": o.odno, "orgn_odno": o.orgn_odno, "code": o.code, "side": o.side,
                        "qty": o.qty, "price": o.price, "filled": o.filled, "cancelled": o.cancelled,
                        "kind": o.rvse_cncl}
                       for o in orders],
        })

    return [
        Route("/__sim/stats", stats, methods=["GET"]),
        Route("/__sim/faults", faults, methods=["GET", "POST"]),
        Route("/__sim/tokens/expire", expire_tokens, methods=["POST"]),
        Route("/__sim/clock", clock, methods=["GET", "POST"]),
        Route("/__sim/market/{code}", market, methods=["GET", "POST"]),
        Route("/__sim/feed", feed, methods=["GET", "POST"]),
        Route("/__sim/accounts/{account}", account, methods=["GET"]),
    ]
