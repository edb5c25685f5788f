"""Where access tokens and approval keys persist between processes, and the single-flight lock.

File store (default): one JSON file per environment + app key hash under the state directory, mode
0600, locked with a file lock. Redis store (when ``KIS_REDIS_URL`` is set): one key per environment +
app key hash, locked with a Redis lock named ``token_refresh`` (10 s timeout, seed 002).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from filelock import AsyncFileLock

REDIS_LOCK_NAME = "token_refresh"
REDIS_LOCK_TIMEOUT_S = 10


def store_key(env: str, app_key: str, rest_url: str = "") -> str:
    """Environment + a hash of the app key (and server): the app key never appears in a path or key name."""
    return f"{env}-{hashlib.sha256(f'{app_key}|{rest_url}'.encode()).hexdigest()[:16]}"


class TokenStore(Protocol):
    async def load(self, key: str) -> dict[str, Any] | None: ...

    async def save(self, key: str, record: dict[str, Any]) -> None: ...

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]: ...


class MemoryTokenStore:
    """For a server that lives and dies with this process (the embedded simulator)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def load(self, key: str) -> dict[str, Any] | None:
        return self._data.get(key)

    async def save(self, key: str, record: dict[str, Any]) -> None:
        self._data[key] = dict(record)

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(key, asyncio.Lock()):
            yield


class FileTokenStore:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"token-{key}.json"

    async def load(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def save(self, key: str, record: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        os.replace(tmp, path)  # atomic: readers never see half a record

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        async with AsyncFileLock(str(self.directory / f"token-{key}.lock"), timeout=30):
            yield


class RedisTokenStore:
    def __init__(self, redis: Any, prefix: str = "kis:token:", lock_name: str = REDIS_LOCK_NAME,
                 lock_timeout_s: float = REDIS_LOCK_TIMEOUT_S) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.prefix = prefix
        self.lock_name = lock_name
        self.lock_timeout_s = lock_timeout_s

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.prefix + key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def save(self, key: str, record: dict[str, Any]) -> None:
        await self.redis.set(self.prefix + key, json.dumps(record))

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        lock = self.redis.lock(self.lock_name, timeout=self.lock_timeout_s, blocking_timeout=30)
        acquired = await lock.acquire()
        if not acquired:
            raise TimeoutError("could not take the token_refresh lock")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # expired after 10 s: another process may hold it now
                await lock.release()
