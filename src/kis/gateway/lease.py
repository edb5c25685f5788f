"""Session-owner lease: exactly one gateway process per KIS app key talks to KIS.

The lease is a row (database) or a key (Redis) with an expiry; the owner renews it well before the
expiry, a standby keeps trying to take it. A process that fails to renew in time demotes itself before
anyone else can be promoted (it stops renewing at ``ttl - margin`` worth of silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kis.aio import cancel_and_wait
from kis.clock import Clock
from kis.logs import get_logger
from kis.storage.db import sessionmaker
from kis.storage.models import SessionLease

log = get_logger("kis.gateway.lease")

LEASE_TTL_S = 15.0
RENEW_EVERY_S = 5.0
STANDBY_MIN_WAIT_S = 0.05  # after the holder's expiry, before trying to take over
STANDBY_RETRY_S = 0.5


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"


class LeaseBackend(Protocol):
    async def try_acquire(self, name: str, owner: str, ttl_s: float) -> bool: ...

    async def release(self, name: str, owner: str) -> None: ...

    async def holder(self, name: str) -> str | None: ...

    async def expires_in(self, name: str) -> float | None:
        """Seconds until the current holder's lease lapses; None if nobody holds it."""


class DbLeaseBackend:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.sessions = sessionmaker(engine)
        self.clock = clock

    async def try_acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        now = self.clock.now()
        expires = now + timedelta(seconds=ttl_s)
        async with self.sessions() as s, s.begin():
            result = await s.execute(
                update(SessionLease)
                .where(SessionLease.name == name)
                .where((SessionLease.owner_id == owner) | (SessionLease.expires_at < now))
                .values(owner_id=owner, expires_at=expires)
            )
            if result.rowcount == 1:
                return True
            exists = await s.scalar(select(SessionLease.name).where(SessionLease.name == name))
            if exists is not None:
                return False
        try:
            async with self.sessions() as s, s.begin():
                s.add(SessionLease(name=name, owner_id=owner, acquired_at=now, expires_at=expires))
            return True
        except IntegrityError:  # another process inserted it first
            return False

    async def release(self, name: str, owner: str) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(update(SessionLease).where(SessionLease.name == name)
                            .where(SessionLease.owner_id == owner).values(expires_at=self.clock.now()))

    async def holder(self, name: str) -> str | None:
        async with self.sessions() as s:
            row = await s.scalar(select(SessionLease).where(SessionLease.name == name))
            if row is None:
                return None
            now = self.clock.now()
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=now.tzinfo)
            return row.owner_id if expires > now else None

    async def expires_in(self, name: str) -> float | None:
        async with self.sessions() as s:
            expires = await s.scalar(select(SessionLease.expires_at).where(SessionLease.name == name))
        if expires is None:
            return None
        now = self.clock.now()
        left = ((expires if expires.tzinfo else expires.replace(tzinfo=now.tzinfo)) - now).total_seconds()
        return left if left > 0 else None


class RedisLeaseBackend:
    _RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
              "else return 0 end")
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

    def __init__(self, redis: Any, prefix: str = "kis:lease:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def try_acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        key = self.prefix + name
        ms = int(ttl_s * 1000)
        if await self.redis.set(key, owner, nx=True, px=ms):
            return True
        return bool(await self.redis.eval(self._RENEW, 1, key, owner, ms))

    async def release(self, name: str, owner: str) -> None:
        await self.redis.eval(self._RELEASE, 1, self.prefix + name, owner)

    async def holder(self, name: str) -> str | None:
        value = await self.redis.get(self.prefix + name)
        return value.decode() if isinstance(value, bytes) else value

    async def expires_in(self, name: str) -> float | None:
        ms = await self.redis.pttl(self.prefix + name)
        return ms / 1000 if ms is not None and ms > 0 else None


class SessionOwnerLease:
    """Keeps trying to own ``name``; calls ``on_promote``/``on_demote`` as ownership changes."""

    def __init__(self, backend: LeaseBackend, name: str, clock: Clock, owner_id: str | None = None,
                 ttl_s: float = LEASE_TTL_S, renew_every_s: float = RENEW_EVERY_S) -> None:
        self.backend = backend
        self.name = name
        self.clock = clock
        self.owner_id = owner_id or new_owner_id()
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s
        self.is_owner = False
        self.last_error: str | None = None
        self._last_renew_mono = 0.0
        self._next_tick_s = renew_every_s
        self._task: asyncio.Task[None] | None = None
        self.on_promote: Callable[[], Awaitable[None]] | None = None
        self.on_demote: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        await self._tick()
        self._task = asyncio.create_task(self._loop(), name="session-lease")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self.is_owner:
            with contextlib.suppress(Exception):
                await self.backend.release(self.name, self.owner_id)
            await self._set_owner(False)

    async def holder(self) -> str | None:
        try:
            return await self.backend.holder(self.name)
        except Exception as err:
            self.last_error = f"{type(err).__name__}"
            return None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._next_tick_s)
            await self._tick()

    async def _tick(self) -> None:
        try:
            held = await self.backend.try_acquire(self.name, self.owner_id, self.ttl_s)
            self.last_error = None
        except Exception as err:
            # Cannot reach the store: keep ownership only while the last renewal is surely still valid.
            self.last_error = f"{type(err).__name__}: {err}"[:200]
            log.warning("lease_store_error", error=self.last_error)
            held = self.is_owner and self.clock.monotonic() - self._last_renew_mono < self.ttl_s - self.renew_every_s
        if held:
            self._last_renew_mono = self.clock.monotonic()
        await self._set_owner(held)
        self._next_tick_s = self.renew_every_s if held else await self._standby_wait()

    async def _standby_wait(self) -> float:
        """A standby tries again just after the holder's lease lapses (a killed owner is replaced within
        the TTL of its last renewal), and at least every ``renew_every_s``."""
        try:
            left = await self.backend.expires_in(self.name)
        except Exception:
            return self.renew_every_s
        if left is None:  # lapsed already, yet not ours: someone else was quicker; look again soon
            return min(self.renew_every_s, STANDBY_RETRY_S)
        return min(self.renew_every_s, left + STANDBY_MIN_WAIT_S)

    async def _set_owner(self, owner: bool) -> None:
        if owner == self.is_owner:
            return
        self.is_owner = owner
        log.info("session_owner_promoted" if owner else "session_owner_demoted", owner_id=self.owner_id)
        callback = self.on_promote if owner else self.on_demote
        if callback is not None:
            await callback()
