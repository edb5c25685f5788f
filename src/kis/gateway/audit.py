"""event_log writes: every event carries a correlation id and the code/schema/config provenance."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kis.clock import Clock
from kis.storage.models import SCHEMA_VERSION, EventLog


def git_commit_sha(override: str | None = None) -> str:
    """The running code's commit: KIS_GIT_COMMIT_SHA, else ``git rev-parse HEAD`` next to the package."""
    if override:
        return override[:40]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else "unknown"


def config_hash(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Provenance:
    git_commit_sha: str
    config_hash: str
    schema_version: str = SCHEMA_VERSION


class Audit:
    def __init__(self, clock: Clock, provenance: Provenance) -> None:
        self.clock = clock
        self.provenance = provenance

    def row(self, event_type: str, correlation_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """An event_log row's values, for callers that insert many in one statement."""
        return {"timestamp": self.clock.now().isoformat(), "event_type": event_type,
                "correlation_id": correlation_id, "payload_json": json.dumps(payload, ensure_ascii=False, default=str),
                "git_commit_sha": self.provenance.git_commit_sha, "schema_version": self.provenance.schema_version,
                "config_hash": self.provenance.config_hash}

    def add(self, session: AsyncSession, event_type: str, correlation_id: str, payload: dict[str, Any]) -> None:
        """Stage an event in the caller's transaction: it commits (or not) with the change it records."""
        session.add(EventLog(**self.row(event_type, correlation_id, payload)))
