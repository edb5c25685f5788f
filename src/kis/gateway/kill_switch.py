"""Kill switch: the latest ``system_state`` row wins; with no row at all it is ACTIVE (fail closed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kis.clock import Clock
from kis.gateway.audit import Audit
from kis.storage.models import SystemState

ACTIVE, INACTIVE = "active", "inactive"


class KillSwitch:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], audit: Audit, clock: Clock) -> None:
        self.sessions = sessions
        self.audit = audit
        self.clock = clock

    @staticmethod
    async def latest(session: AsyncSession) -> SystemState | None:
        return await session.scalar(select(SystemState).order_by(SystemState.id.desc()).limit(1))

    async def is_active(self, session: AsyncSession | None = None) -> bool:
        if session is None:
            async with self.sessions() as s:
                row = await self.latest(s)
        else:
            row = await self.latest(session)
        # Anything but an explicit "inactive" (any case) keeps trading stopped.
        return row is None or str(row.kill_switch_status).strip().lower() != INACTIVE

    async def status(self) -> dict[str, Any]:
        async with self.sessions() as s:
            row = await self.latest(s)
        if row is None:
            return {"kill_switch": "ACTIVE", "reason": "no system_state row (default ACTIVE)", "changed_by": None,
                    "timestamp": None}
        active = str(row.kill_switch_status).strip().lower() != INACTIVE
        return {"kill_switch": "ACTIVE" if active else "INACTIVE", "reason": row.kill_switch_reason,
                "changed_by": row.changed_by, "timestamp": row.timestamp}

    async def set(self, active: bool, reason: str, changed_by: str) -> dict[str, Any]:
        if not reason.strip() or not changed_by.strip():
            raise ValueError("a kill switch change needs a reason and who made it")
        now = self.clock.now().isoformat()
        async with self.sessions() as s, s.begin():
            s.add(SystemState(timestamp=now, kill_switch_status=ACTIVE if active else INACTIVE,
                              kill_switch_reason=reason, changed_by=changed_by))
            self.audit.add(s, "kill_switch_activated" if active else "kill_switch_deactivated",
                           "manual-kill-switch-change",
                           {"reason": reason, ("activated_by" if active else "deactivated_by"): changed_by})
        return await self.status()
