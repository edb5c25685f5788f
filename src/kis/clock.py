"""One injectable clock (KST) and the market calendars behind it.

Everything that asks "what time is it" or "is the market open" goes through a Clock, so tests and the
simulator control time instead of depending on the hour a test happens to run.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware, in KST."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards. For rate limits and timeouts."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(KST)

    def monotonic(self) -> float:
        return time.monotonic()


class OffsetClock:
    """Wall clock shifted by an adjustable offset; the simulator's clock.

    Shifting time (to expire tokens, or to land inside KRX hours) moves ``now()`` only; ``monotonic()``
    stays real so rate limits and keep-alives keep measuring real elapsed time.
    """

    def __init__(self, offset: timedelta = timedelta()) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(KST) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def set_now(self, when: datetime) -> None:
        if when.tzinfo is None:
            when = when.replace(tzinfo=KST)
        self.offset = when - datetime.now(KST)


class ManualClock:
    """A clock that only moves when told to; for unit tests."""

    def __init__(self, start: datetime, mono: float = 1000.0) -> None:
        self._now = start if start.tzinfo else start.replace(tzinfo=KST)
        self._mono = mono

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


@cache
def _calendar(code: str):  # type: ignore[no-untyped-def]
    import exchange_calendars

    return exchange_calendars.get_calendar(code)


def krx_is_open(when: datetime) -> bool:
    """KRX regular session (09:00–15:30 KST) on a KRX trading day, holidays included."""
    cal = _calendar("XKRX")
    minute = when.astimezone(KST).replace(second=0, microsecond=0)
    day = minute.date().isoformat()
    if not cal.is_session(day):
        return False
    t = minute.time()
    return (t.hour, t.minute) >= (9, 0) and (t.hour, t.minute) < (15, 30)


def us_is_open(when: datetime) -> bool:
    """NYSE regular session (handles US DST through the exchange calendar)."""
    cal = _calendar("XNYS")
    minute = when.astimezone(ZoneInfo("UTC")).replace(second=0, microsecond=0, tzinfo=None)
    return bool(cal.is_open_on_minute(minute.isoformat()))
