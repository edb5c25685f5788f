"""Is the market open? An override wins; else the market's own calendar.

The calendar is the real KRX/NYSE one on the injected clock — except on the embedded simulator, whose
session (always open by default) *is* the market the gateway trades against.
"""

from __future__ import annotations

from typing import Protocol

from kis.clock import Clock, krx_is_open, us_is_open
from kis.config import MarketOverride


class SessionSource(Protocol):
    def kr_open(self) -> bool: ...

    def us_open(self) -> bool: ...


class CalendarSession:
    """The exchanges' real calendars, holidays included, evaluated once per clock minute."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._cache: dict[str, tuple[tuple[int, int, int, int, int], bool]] = {}

    def _cached(self, name: str, fn) -> bool:  # type: ignore[no-untyped-def]
        now = self.clock.now()
        minute = (now.year, now.month, now.day, now.hour, now.minute)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == minute:
            return hit[1]
        value = bool(fn(now))
        self._cache[name] = (minute, value)
        return value

    def kr_open(self) -> bool:
        return self._cached("kr", krx_is_open)

    def us_open(self) -> bool:
        return self._cached("us", us_is_open)


class MarketSchedule:
    def __init__(self, clock: Clock, override: MarketOverride | None = None,
                 session: SessionSource | None = None) -> None:
        self.clock = clock
        self.override = override
        self.session: SessionSource = session or CalendarSession(clock)

    def kr_open(self) -> bool:
        if self.override is not None:
            return self.override is MarketOverride.OPEN
        return self.session.kr_open()

    def us_open(self) -> bool:
        if self.override is not None:
            return self.override is MarketOverride.OPEN
        return self.session.us_open()

    def describe(self) -> dict[str, object]:
        return {"override": self.override.value if self.override else None,
                "calendar": "simulator" if not isinstance(self.session, CalendarSession) else "exchange",
                "kr_open": self.kr_open(), "us_open": self.us_open()}
