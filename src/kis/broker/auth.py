"""Access tokens and WebSocket approval keys for one app key, shared safely between processes.

Rules kept (reference §2): at most one issuance per minute per app key; reuse a token while valid;
refresh ahead of expiry; on EGW00123/EGW00121 invalidate and refresh once (KIS's rejection lets one
tokenP go at once; an EGW00133 answer is recorded in the store and holds every process back for the
minute). The refresh is single-flight: one asyncio lock in the process, and the store's lock across
processes — whoever takes it second re-reads the store and uses the token the first one saved. Waiting
for the next allowed issuance happens outside both locks.
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


def _expires_at(record: dict[str, Any] | None) -> datetime | None:
    """The expiry of a usable-looking record; None if it is missing, invalidated or unreadable."""
    if not record or record.get("invalid") or not record.get("access_token"):
        return None
    try:
        return datetime.fromisoformat(str(record["expires_at"]))
    except (KeyError, ValueError):
        return None


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
        """Valid and not yet inside the refresh margin."""
        expires = _expires_at(record)
        return expires is not None and self.clock.now() < expires - self.refresh_margin

    def _alive(self, record: dict[str, Any] | None) -> bool:
        """Still accepted by KIS (possibly inside the refresh margin)."""
        expires = _expires_at(record)
        return expires is not None and self.clock.now() < expires

    def _issue_wait(self, record: dict[str, Any] | None) -> float:
        """Seconds until the next tokenP for this app key may be sent (0 = now).

        Our own last issuance gates the next one by ``issue_min_interval`` — unless KIS has since rejected
        that token (EGW00123/EGW00121, ``invalid``): the server's word is newer than our bookkeeping, so one
        tokenP may go at once. If KIS answers it with EGW00133, ``blocked_until`` holds everyone back for
        the minute, so issuances stay at most one per minute either way."""
        if not record:
            return 0.0
        gates: list[tuple[str, timedelta]] = [("blocked_until", timedelta())]
        if not record.get("invalid"):
            gates.append(("issued_at", self.issue_min_interval))
        allowed: list[datetime] = []
        for name, extra in gates:
            text = record.get(name)
            if isinstance(text, str):
                try:
                    allowed.append(datetime.fromisoformat(text) + extra)
                except ValueError:
                    pass
        if not allowed:
            return 0.0
        return max(0.0, (max(allowed) - self.clock.now()).total_seconds())

    def _holding(self, record: dict[str, Any] | None) -> bool:
        """Due for a refresh, but too soon to issue again and the current token still works: keep it."""
        return self._alive(record) and self._issue_wait(record) > 0

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
        a new one, raise ``TokenIssueTooSoonError`` at once (retryable) instead of holding the caller.

        The wait for the next allowed issuance happens outside every lock, so callers with a short
        ``max_wait`` are never queued behind one that is prepared to wait, and the cross-process lock
        (Redis: 10 s lease) is only held for one load + tokenP + save.
        """
        deadline = None if max_wait is None else self.clock.monotonic() + max_wait
        while True:
            rec = self._record
            if self._usable(rec) or self._holding(rec):
                return rec["access_token"]  # type: ignore[index]
            async with self._lock:
                wait = await self._refresh_locked()
            if wait <= 0:
                return self._record["access_token"]  # type: ignore[index]
            if deadline is not None and wait > deadline - self.clock.monotonic():
                raise TokenIssueTooSoonError("EGW00133", f"next token issuance allowed in {wait:.0f}s")
            log.info("token_issue_waiting", seconds=round(wait, 1))
            await asyncio.sleep(wait)

    async def _refresh_locked(self) -> float:
        """With the in-process lock held: make ``self._record`` usable, or return how long to wait."""
        if self._usable(self._record) or self._holding(self._record):
            return 0.0
        async with self.store.lock(self.key):
            stored = await self.store.load(self.key)
            if self._usable(stored) or self._holding(stored):
                self._record = stored  # another process (or instance) refreshed it
                return 0.0
            wait = self._issue_wait(stored)
            if wait > 0:
                self._record = stored
                return wait
            try:
                record = await self._call_token_p()
            except TokenIssueTooSoonError:
                # Someone we cannot see (another host, a lost store) issued within the minute: record it so
                # that no process here asks again before the minute is over.
                blocked = {**(stored or {}),
                           "blocked_until": (self.clock.now() + self.issue_min_interval).isoformat()}
                await self.store.save(self.key, blocked)
                self._record = blocked
                log.warning("token_issue_too_soon", retry_in_s=self.issue_min_interval.total_seconds())
                return 0.0 if self._alive(blocked) else self.issue_min_interval.total_seconds()
            await self.store.save(self.key, record)
            self._record = record
            return 0.0

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
