"""Access tokens and WebSocket approval keys for one app key, shared safely between processes.

Rules kept (reference §2): at most one tokenP per minute per app key; reuse a token while valid;
refresh ahead of expiry; on EGW00123/EGW00121 invalidate and refresh once. The refresh is
single-flight: one asyncio lock in the process, and the store's lock across processes — whoever
takes it second re-reads the store and uses the token the first one saved.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx

from kis.broker import trids as T
from kis.broker.errors import KisTransportError, TokenIssueTooSoonError, error_for
from kis.broker.token_store import TokenStore
from kis.clock import KST, Clock
from kis.logs import get_logger

log = get_logger("kis.broker.auth")

REFRESH_MARGIN = timedelta(minutes=10)
ISSUE_MIN_INTERVAL = timedelta(seconds=61)  # KIS: 1 per minute; one second of slack for clock skew
APPROVAL_LIFETIME = timedelta(hours=23)


def _parse_kst(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)


class TokenManager:
    def __init__(self, http: httpx.AsyncClient, app_key: str, app_secret: str, key: str, store: TokenStore,
                 clock: Clock, refresh_margin: timedelta = REFRESH_MARGIN,
                 issue_min_interval: timedelta = ISSUE_MIN_INTERVAL) -> None:
        self.http = http
        self.app_key = app_key
        self.app_secret = app_secret
        self.store = store
        self.clock = clock
        self.key = key  # store_key(env, app_key, rest_url)
        self.refresh_margin = refresh_margin
        self.issue_min_interval = issue_min_interval
        self._record: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self._approval: tuple[str, datetime] | None = None
        self._approval_lock = asyncio.Lock()
        self.issued = 0  # tokenP calls this process made
        self.last_error: str | None = None

    # --- access token ---------------------------------------------------------------------------------

    def _usable(self, record: dict[str, Any] | None) -> bool:
        if not record or record.get("invalid") or not record.get("access_token"):
            return False
        return self.clock.now() < datetime.fromisoformat(record["expires_at"]) - self.refresh_margin

    def _alive(self, record: dict[str, Any] | None) -> bool:
        if not record or record.get("invalid") or not record.get("access_token"):
            return False
        return self.clock.now() < datetime.fromisoformat(record["expires_at"])

    @property
    def token_state(self) -> dict[str, Any]:
        rec = self._record
        return {
            "has_token": self._alive(rec),
            "expires_at": rec.get("expires_at") if rec else None,
            "issued_by_this_process": self.issued,
            "last_error": self.last_error,
        }

    async def get(self, max_wait: float | None = None) -> str:
        """A valid token. If KIS's one-per-minute rule means waiting longer than ``max_wait`` seconds for
        a new one, raise ``TokenIssueTooSoonError`` at once (retryable) instead of holding the caller."""
        if self._usable(self._record):
            return self._record["access_token"]  # type: ignore[index]
        async with self._lock:
            if self._usable(self._record):
                return self._record["access_token"]  # type: ignore[index]
            async with self.store.lock(self.key):
                stored = await self.store.load(self.key)
                if self._usable(stored):
                    self._record = stored
                    return stored["access_token"]  # type: ignore[index]
                record = await self._issue(stored, max_wait)
                await self.store.save(self.key, record)
                self._record = record
                return record["access_token"]

    async def _issue(self, stored: dict[str, Any] | None, max_wait: float | None) -> dict[str, Any]:
        last = datetime.fromisoformat(stored["issued_at"]) if stored and stored.get("issued_at") else None
        if last is not None and self.clock.now() - last < self.issue_min_interval:
            if self._alive(stored):
                # Too soon to issue again, but the current token still works: use it until then.
                return stored  # type: ignore[return-value]
            wait = (last + self.issue_min_interval - self.clock.now()).total_seconds()
            if max_wait is not None and wait > max_wait:
                raise TokenIssueTooSoonError("EGW00133", f"next token issuance allowed in {wait:.0f}s")
            log.info("token_issue_waiting", seconds=round(wait, 1))
            await asyncio.sleep(max(0.0, wait))
        for attempt in (1, 2):
            try:
                return await self._call_token_p()
            except TokenIssueTooSoonError:
                if attempt == 2:
                    raise
                log.warning("token_issue_too_soon", retry_in_s=self.issue_min_interval.total_seconds())
                await asyncio.sleep(self.issue_min_interval.total_seconds())
        raise AssertionError("unreachable")

    async def _call_token_p(self) -> dict[str, Any]:
        body = {"grant_type": "client_credentials", "appkey": self.app_key, "appsecret": self.app_secret}
        try:
            r = await self.http.post(T.TOKEN_PATH, json=body)
        except httpx.HTTPError as err:
            self.last_error = f"transport: {type(err).__name__}"
            raise KisTransportError("TRANSPORT", type(err).__name__) from None
        data = _json(r)
        if r.status_code != 200 or "access_token" not in data:
            code = str(data.get("error_code") or data.get("msg_cd") or f"HTTP{r.status_code}")
            message = str(data.get("error_description") or data.get("msg1") or "")
            self.last_error = code
            log.error("token_issue_failed", code=code, status=r.status_code)
            raise error_for(code, message, r.status_code)
        now = self.clock.now()
        expires = _expiry(data, now)
        self.issued += 1
        self.last_error = None
        log.info("token_issued", expires_at=expires.isoformat())
        return {"access_token": data["access_token"], "expires_at": expires.isoformat(),
                "issued_at": now.isoformat(), "invalid": False}

    async def invalidate(self, token: str) -> None:
        """The server refused ``token`` (EGW00123/EGW00121): make every process refresh it."""
        async with self._lock:
            if self._record and self._record.get("access_token") == token:
                self._record = {**self._record, "invalid": True}
            async with self.store.lock(self.key):
                stored = await self.store.load(self.key)
                if stored and stored.get("access_token") == token and not stored.get("invalid"):
                    await self.store.save(self.key, {**stored, "invalid": True})
        log.warning("token_invalidated")

    # --- WebSocket approval key -------------------------------------------------------------------------

    async def approval_key(self, force: bool = False) -> str:
        async with self._approval_lock:
            if not force and self._approval and self.clock.now() < self._approval[1]:
                return self._approval[0]
            body = {"grant_type": "client_credentials", "appkey": self.app_key, "secretkey": self.app_secret}
            try:
                r = await self.http.post(T.APPROVAL_PATH, json=body)
            except httpx.HTTPError as err:
                raise KisTransportError("TRANSPORT", type(err).__name__) from None
            data = _json(r)
            key = data.get("approval_key")
            if r.status_code != 200 or not key:
                code = str(data.get("error_code") or data.get("msg_cd") or f"HTTP{r.status_code}")
                log.error("approval_key_failed", code=code, status=r.status_code)
                raise error_for(code, str(data.get("error_description") or ""), r.status_code)
            self._approval = (str(key), self.clock.now() + APPROVAL_LIFETIME)
            log.info("approval_key_issued")
            return str(key)


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _expiry(data: dict[str, Any], now: datetime) -> datetime:
    """Trust the absolute KST expiry; ``expires_in`` has no reference time (reference §2.1)."""
    text = data.get("access_token_token_expired")
    if isinstance(text, str):
        try:
            return _parse_kst(text)
        except ValueError:
            pass
    try:
        return now + timedelta(seconds=int(data.get("expires_in", 0)))
    except (TypeError, ValueError):
        return now + timedelta(hours=23)
