"""Fault switches, settable at start (``kis sim --fault name=value``) and at runtime (admin API)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class Faults:
    ws_drop_after_s: float | None = None  # abort each WS connection this long after it opens
    ws_silent: bool = False  # connected, ACKs and PINGPONG, but no realtime data
    ws_stale_session: bool = False  # after an abnormal close, keys stay held (OPSP0002) for stale_grace_s
    stale_grace_s: float = 3.0
    ws_idle_timeout_s: float | None = None  # close a session that sent nothing for this long
    rest_5xx_burst: int = 0  # the next N KIS REST calls fail with HTTP 500 EGW00002, unprocessed
    rate_limit_storm_s: float = 0.0  # every KIS REST call gets EGW00201 for this many seconds
    latency_ms: float = 0.0  # added to every REST answer and every WS data frame
    # Orders KIS executed but whose answer the client never gets in time: the "check your last trade" case.
    order_answer_delay_ms: float = 0.0  # order-cash/rvsecncl answers wait this long after the order is placed
    order_answer_lost: int = 0  # the next N order calls are executed, then answered HTTP 500 EGW00002
    order_fail_unprocessed: int = 0  # the next N order calls fail HTTP 500 EGW00002 before anything happens
    order_answer_no_odno: int = 0  # the next N order calls are executed, then answered "success" with no ODNO

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def update(self, values: dict[str, object]) -> None:
        """Apply ``values`` (strings allowed, e.g. from the CLI); unknown names raise KeyError."""
        types = {f.name: f.type for f in fields(self)}
        for name, raw in values.items():
            if name not in types:
                raise KeyError(name)
            setattr(self, name, _coerce(str(types[name]), raw))


def _coerce(type_name: str, raw: object) -> object:
    if raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "null")):
        if "None" in type_name:
            return None
        raise ValueError("a value is required")
    if type_name.startswith("bool"):
        if isinstance(raw, bool):
            return raw
        text = str(raw).lower()
        if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"not a boolean: {raw!r}")
        return text in ("1", "true", "yes", "on")
    if type_name.startswith("int"):
        value = int(str(raw))
        if value < 0:
            raise ValueError("must be >= 0")
        return value
    value_f = float(str(raw))
    if value_f < 0:
        raise ValueError("must be >= 0")
    return value_f
