"""Async KIS REST client: pooled httpx, paced under the app key's budget, KIS answers → typed errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from kis.broker.auth import TokenManager
from kis.broker.errors import (
    KisTransportError,
    RestRateLimitCooldownError,
    TokenExpiredError,
    TokenInvalidError,
    error_for,
)
from kis.broker.pacing import Priority, RatePacer
from kis.logs import get_logger

log = get_logger("kis.broker.rest")

RATE_LIMIT_COOLDOWN_S = 1.0


@dataclass(frozen=True)
class KisResponse:
    body: dict[str, Any]
    tr_cont: str  # response header: F/M = more pages, D/E = last
    elapsed_ms: float = 0.0  # the HTTP round trip alone (no pacing, no token wait)

    @property
    def has_more(self) -> bool:
        return self.tr_cont in ("F", "M")


class KisRestClient:
    def __init__(self, base_url: str, app_key: str, app_secret: str, tokens: TokenManager, pacer: RatePacer,
                 http: httpx.AsyncClient | None = None, timeout_s: float = 10.0) -> None:
        self.http = http or httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20))
        self.app_key = app_key
        self.app_secret = app_secret
        self.tokens = tokens
        self.pacer = pacer
        self.calls = 0
        self.rate_limited = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, tr_id: str, *, params: dict[str, str] | None = None,
                   body: dict[str, Any] | None = None, tr_cont: str = "", priority: Priority = Priority.QUOTE,
                   max_wait: float | None = None, on_wire: Callable[[], None] | None = None) -> KisResponse:
        """One KIS call. Token errors refresh and retry once (KIS did not process the call).

        ``on_wire`` is called just before the request leaves: until then, cancelling the call is known to
        have sent nothing (a write may be requeued); after it, the outcome of a cancelled write is unknown.
        """
        for attempt in (1, 2):
            # Token first, then the slot: calls queued behind a token issuance must not leave together.
            token = await self.tokens.get(max_wait)
            await self.pacer.acquire(priority, max_wait)
            if on_wire is not None:
                on_wire()
            try:
                return await self._send(method, path, tr_id, token, params, body, tr_cont)
            except (TokenExpiredError, TokenInvalidError):
                await self.tokens.invalidate(token)
                if attempt == 2:
                    raise
            except RestRateLimitCooldownError:
                self.rate_limited += 1
                self.pacer.cooldown(RATE_LIMIT_COOLDOWN_S)
                raise
        raise AssertionError("unreachable")

    async def _send(self, method: str, path: str, tr_id: str, token: str, params: dict[str, str] | None,
                    body: dict[str, Any] | None, tr_cont: str) -> KisResponse:
        headers = {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {token}",
            "appkey": self.app_key,
            "appsecret": self.app_secret,
            "tr_id": tr_id,
            "tr_cont": tr_cont,
            "custtype": "P",
        }
        self.calls += 1
        try:
            sent = time.perf_counter()
            r = await self.http.request(method, path, params=params, json=body, headers=headers)
            elapsed_ms = (time.perf_counter() - sent) * 1000
        except httpx.HTTPError as err:
            # Sent or not, answered or not: the caller must treat a write's outcome as unknown.
            log.warning("kis_rest_transport_error", tr_id=tr_id, error=type(err).__name__)
            raise KisTransportError("TRANSPORT", type(err).__name__) from None
        try:
            data = r.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        rt_cd = str(data.get("rt_cd", ""))
        if r.status_code == 200 and rt_cd == "0":
            return KisResponse(data, r.headers.get("tr_cont", "").strip(), elapsed_ms)
        code = str(data.get("msg_cd") or data.get("error_code") or "")
        message = str(data.get("msg1") or data.get("error_description") or "").strip()
        err = error_for(code, message, r.status_code, rt_cd or None)
        log.info("kis_rest_error", tr_id=tr_id, status=r.status_code, code=err.code, kind=type(err).__name__)
        raise err
