"""KRX price rules: the tick grid and the daily ±30 % limits. Market facts, not KIS API facts."""

from __future__ import annotations

import math

# (upper bound exclusive, tick) — KRX 2023 table (reference §7).
_TICKS: tuple[tuple[int, int], ...] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)
_TOP_TICK = 1_000
LIMIT_RATE = 0.30


def tick_size(price: int) -> int:
    for bound, tick in _TICKS:
        if price < bound:
            return tick
    return _TOP_TICK


def is_on_tick(price: int) -> bool:
    return price > 0 and price % tick_size(price) == 0


def _grid_down(p: int) -> int:
    return p - p % tick_size(p)


def _grid_up(p: int) -> int:
    down = _grid_down(p)
    return down if down == p else down + tick_size(down)


def round_to_tick(price: float, mode: str = "nearest") -> int:
    """Round a price onto the grid. ``mode`` is nearest, down or up."""
    if mode == "down":
        return max(_grid_down(max(1, math.floor(price))), 1)
    up = _grid_up(max(1, math.ceil(price)))
    if mode == "up":
        return up
    down = max(_grid_down(max(1, math.floor(price))), 1)
    return down if (price - down) <= (up - price) else up


def price_limits(base_price: int) -> tuple[int, int]:
    """(lower, upper) limit for a day whose base (previous close) is ``base_price``."""
    upper = round_to_tick(base_price * (1 + LIMIT_RATE), "down")
    lower = round_to_tick(base_price * (1 - LIMIT_RATE), "up")
    return lower, upper


def step_ticks(price: int, n: int) -> int:
    """Move ``n`` ticks up (n > 0) or down (n < 0) along the grid."""
    for _ in range(abs(n)):
        if n > 0:
            price += tick_size(price)
        else:
            below = price - 1
            price -= tick_size(below) if below > 0 else 0
    return max(price, 1)
