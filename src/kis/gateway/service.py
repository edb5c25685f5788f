"""The gateway's command layer: routes, the CLI and the console call these, never the adapter directly."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from kis.clock import KST
from kis.config import KisEnv
from kis.gateway.errors import ApiError
from kis.gateway.runtime import GatewayRuntime
from kis.logs import mask_account

MAX_BATCH = 50


class GatewayService:
    def __init__(self, runtime: GatewayRuntime) -> None:
        self.rt = runtime

    # --- session --------------------------------------------------------------------------------------

    def _require_owner(self) -> None:
        lease = self.rt.lease
        if lease is None or self.rt.quotes is None:
            raise ApiError(503, "KIS_NOT_CONFIGURED", "; ".join(self.rt.config_errors) or "KIS is not configured")
        if not lease.is_owner:
            raise ApiError(503, "SESSION_STANDBY", "this gateway is standby: another process owns the KIS session",
                           retryable=True)

    def _last_message_ts(self) -> str | None:
        ws = self.rt.ws
        if ws is None or ws.stats.last_message_mono is None:
            return None
        age = self.rt.clock.monotonic() - ws.stats.last_message_mono
        return datetime.fromtimestamp(self.rt.clock.now().timestamp() - age, KST).isoformat()

    async def session_status(self) -> dict[str, Any]:
        rt = self.rt
        ep = rt.endpoint
        lease = rt.lease
        ws = rt.ws
        return {
            "role": "owner" if lease and lease.is_owner else "standby" if lease else "unconfigured",
            "owner_id": lease.owner_id if lease else None,
            "lease_holder": await lease.holder() if lease else None,
            "lease_error": lease.last_error if lease else None,
            "kis_env": rt.settings.kis_env.value,
            "paper": rt.settings.paper,
            "embedded_simulator": bool(ep and ep.embedded_sim),
            "rest_url": ep.rest_url if ep else None,
            "ws_url": ep.ws_url if ep else None,
            "account": mask_account(ep.account_no) if ep and ep.account_no else None,
            "token": rt.tokens.token_state if rt.tokens else None,
            "ws": {
                "state": ws.stats.state if ws else "disabled",
                "connected": bool(ws and ws.stats.connected),
                "subscriptions_held": sorted(f"{t}:{k}" for t, k in ws.held) if ws else [],
                "slots_used": len(ws.slots) if ws else 0,
                "slots_max": ws.config.max_slots if ws else 0,
                "heartbeat_fresh": bool(ws and ws.heartbeat_fresh),
                "reconnect_count": ws.stats.reconnect_count if ws else 0,
                "last_error": ws.stats.last_error if ws else None,
            },
            "market": rt.schedule.describe(),
            "config_errors": rt.config_errors,
        }

    async def live_readiness(self) -> dict[str, Any]:
        """``can_trade`` only when credentials, token, WS ACK and safety gates are all OK (seed 000 §0)."""
        rt = self.rt
        blockers: list[str] = list(rt.config_errors)
        ep = rt.endpoint
        if ep is None:
            blockers.append("credentials: KIS endpoint or app key not configured")
        if ep is not None and not ep.account_no:
            blockers.append("credentials: KIS_ACCOUNT_NO not configured")
        if rt.lease is None or not rt.lease.is_owner:
            blockers.append("session: this gateway does not own the KIS session")
        if rt.tokens is None or not rt.tokens.token_state["has_token"]:
            blockers.append("token: no valid access token")
        ws = rt.ws
        if ws is None or not ws.stats.connected:
            blockers.append("ws: not connected")
        elif not ws.held:
            blockers.append("ws: no subscription acknowledged")
        elif not ws.heartbeat_fresh:
            blockers.append("ws: heartbeat stale")
        blockers.extend(await self._safety_blockers())
        return {"can_trade": not blockers, "blockers": blockers}

    async def _safety_blockers(self) -> list[str]:
        """The order path's own gates, read fresh (fail closed: unknown state blocks)."""
        rt = self.rt
        s = rt.settings
        trading = rt.trading
        if trading is None:
            return ["safety: order path not configured"]
        out = []
        try:
            if await trading.kill_switch.is_active():
                out.append("safety: kill switch ACTIVE")
        except Exception as err:
            out.append(f"safety: kill switch state unknown ({type(err).__name__})")
        if s.kis_env is KisEnv.LIVE and not s.paper and not s.kis_live_trading_enabled:
            out.append("safety: live trading disabled (KIS_LIVE_TRADING_ENABLED=false)")
        return out

    async def reconnect(self) -> dict[str, Any]:
        self._require_owner()
        assert self.rt.ws is not None
        self.rt.ws.request_reconnect()
        self.rt.ws.start()  # a worker that gave up (max attempts) starts again; a running one is untouched
        return {"reconnect": "requested", "reconnect_count": self.rt.ws.stats.reconnect_count}

    # --- quotes ---------------------------------------------------------------------------------------

    async def quote(self, symbol: str, exchange: str = "NAS") -> dict[str, Any]:
        self._require_owner()
        assert self.rt.quotes is not None
        return await self.rt.quotes.get(symbol, exchange.upper())

    async def quotes(self, symbols: str, exchange: str = "NAS") -> dict[str, Any]:
        self._require_owner()
        quotes = self.rt.quotes
        assert quotes is not None
        names = [x for x in symbols.split(",") if x.strip(" ")]
        if not names:
            raise ApiError(422, "INVALID_SYMBOL", "symbols= needs at least one symbol")
        if len(names) > MAX_BATCH:
            raise ApiError(422, "TOO_MANY_SYMBOLS", f"at most {MAX_BATCH} symbols per request")
        # Validate all before spending any KIS call; the same normalisation as a single quote.
        unique = list(dict.fromkeys(quotes.classify(name)[1] for name in names))
        market = exchange.upper()

        async def one(name: str) -> dict[str, Any] | ApiError:
            try:
                return await quotes.get(name, market)
            except ApiError as err:
                return err

        # Concurrently: REST fallbacks share the paced budget; a batch is not N round trips in a row.
        answers = await asyncio.gather(*(one(name) for name in unique))
        results = [a for a in answers if not isinstance(a, ApiError)]
        errors = [{"symbol": name, "code": a.code, "message": a.message, "retryable": a.retryable}
                  for name, a in zip(unique, answers, strict=True) if isinstance(a, ApiError)]
        return {"quotes": results, "errors": errors}

    def quote_metrics(self) -> dict[str, Any]:
        rt = self.rt
        ws = rt.ws
        m = rt.quotes.metrics if rt.quotes else None
        answered = (m.ws_quote_hits + m.rest_fallbacks) if m else 0
        return {
            "cached_symbols": len(rt.cache.quotes),
            "ws_messages": ws.stats.messages if ws else 0,
            "rest_fallbacks": m.rest_fallbacks if m else 0,
            "ws_connected": bool(ws and ws.stats.connected),
            "last_ws_message_ts": self._last_message_ts(),
            "ws_heartbeat_fresh": bool(ws and ws.heartbeat_fresh),
            "ws_reconnect_count": ws.stats.reconnect_count if ws else 0,
            "ws_last_error": ws.stats.last_error if ws else None,
            "ws_records": ws.stats.records if ws else 0,
            "ws_slots_used": len(ws.slots) if ws else 0,
            "ws_slots_max": ws.config.max_slots if ws else 0,
            "ws_pingpong_answered": ws.stats.pingpong_answered if ws else 0,
            "parse_failures": rt.parser.failures,
            "quote_requests": m.requests if m else 0,
            "ws_quote_hits": m.ws_quote_hits if m else 0,
            "rest_calls": m.rest_calls if m else 0,
            "rest_rate_limited": m.rate_limited if m else 0,
            "fallback_ratio": round(m.rest_fallbacks / answered, 4) if m and answered else 0.0,
            "fallback_reasons": dict(m.fallback_reasons) if m else {},
            "stream_clients": rt.fanout.clients,
        }
