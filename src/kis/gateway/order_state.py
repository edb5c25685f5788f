"""The order state machine, in one transition table.

ACCEPTED → SUBMITTING → SUBMITTED → PARTIALLY_FILLED → FILLED, with MODIFY_PENDING and CANCEL_PENDING
around a working order, REJECTED, CANCELLED, and UNKNOWN for a submit whose outcome KIS did not tell us
(resolved only by reconciliation, never by resubmitting).
"""

from __future__ import annotations

from enum import StrEnum


class S(StrEnum):
    ACCEPTED = "ACCEPTED"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    MODIFY_PENDING = "MODIFY_PENDING"
    CANCEL_PENDING = "CANCEL_PENDING"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


TERMINAL = frozenset({S.FILLED, S.CANCELLED, S.REJECTED})

# event -> {from: to}. "working" stands for SUBMITTED or PARTIALLY_FILLED, chosen by the fill count.
TRANSITIONS: dict[str, dict[S, S | str]] = {
    "submit_start": {S.ACCEPTED: S.SUBMITTING},
    "submit_ack": {S.SUBMITTING: "working", S.UNKNOWN: "working"},
    "submit_not_processed": {S.SUBMITTING: S.ACCEPTED},  # EGW00201 and friends: KIS refused before acting
    "submit_rejected": {S.SUBMITTING: S.REJECTED, S.UNKNOWN: S.REJECTED},
    "submit_unknown": {S.SUBMITTING: S.UNKNOWN},
    "fill": {S.SUBMITTING: "working", S.UNKNOWN: "working", S.SUBMITTED: "working", S.PARTIALLY_FILLED: "working",
             S.MODIFY_PENDING: S.MODIFY_PENDING, S.CANCEL_PENDING: S.CANCEL_PENDING},
    "fully_filled": {S.SUBMITTING: S.FILLED, S.UNKNOWN: S.FILLED, S.SUBMITTED: S.FILLED,
                     S.PARTIALLY_FILLED: S.FILLED, S.MODIFY_PENDING: S.FILLED, S.CANCEL_PENDING: S.FILLED},
    "modify_request": {S.SUBMITTED: S.MODIFY_PENDING, S.PARTIALLY_FILLED: S.MODIFY_PENDING},
    "modify_done": {S.MODIFY_PENDING: "working"},
    "modify_failed": {S.MODIFY_PENDING: "working"},
    "cancel_request": {S.ACCEPTED: S.CANCELLED, S.SUBMITTED: S.CANCEL_PENDING, S.PARTIALLY_FILLED: S.CANCEL_PENDING},
    "cancel_done": {S.CANCEL_PENDING: S.CANCELLED, S.MODIFY_PENDING: S.CANCELLED, S.SUBMITTED: S.CANCELLED,
                    S.PARTIALLY_FILLED: S.CANCELLED, S.UNKNOWN: S.CANCELLED},
    "cancel_failed": {S.CANCEL_PENDING: "working"},
    # KRX day orders end with their trading day: what was never sent is not sent the next morning, and
    # what still rested at KIS is no longer working.
    "expire": {S.ACCEPTED: S.CANCELLED, S.SUBMITTED: S.CANCELLED, S.PARTIALLY_FILLED: S.CANCELLED,
               S.MODIFY_PENDING: S.CANCELLED, S.CANCEL_PENDING: S.CANCELLED},
}


class InvalidTransition(Exception):
    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"{event} is not allowed in state {state}")
        self.state = state
        self.event = event


def next_state(state: str, event: str, filled: int = 0) -> S:
    """The state after ``event``; raises InvalidTransition if the table has no such edge."""
    target = TRANSITIONS[event].get(S(state))
    if target is None:
        raise InvalidTransition(state, event)
    if target == "working":
        return S.PARTIALLY_FILLED if filled > 0 else S.SUBMITTED
    return S(target)

