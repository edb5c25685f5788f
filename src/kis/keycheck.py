"""Real-key validation, allowed only while both markets are closed (seed 002 §5.1).

Gap windows (KST): 17:00–22:00 and 06:00–08:00. Outside them the check does not touch KIS and says why.
The check itself is read-only: one token (reused if cached) and one WebSocket approval key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from kis.clock import KST

GAP_WINDOWS = ((time(17, 0), time(22, 0)), (time(6, 0), time(8, 0)))


def in_gap_window(when: datetime) -> bool:
    t = when.astimezone(KST).time()
    return any(start <= t < end for start, end in GAP_WINDOWS)


@dataclass(frozen=True)
class KeyCheckResult:
    ran: bool
    ok: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"ran": self.ran, "ok": self.ok, "reason": self.reason}
