"""Realtime frame parsing driven by the declarative field tables in ``fields.py``.

A data frame is ``<enc>|<tr_id>|<count>|<payload>``; the payload is ``count`` records of ``^``-joined
values with no separator between records. KIS has appended fields to records before, so a record may
be longer than its table: the record length is taken from the frame (values ÷ count) and only the
documented prefix is read. A frame that cannot be split that way is a parse failure — counted, and its
raw text kept for diagnosis — never an exception into the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from kis.broker.fields import REALTIME_TABLES

FAILED_FRAMES_KEPT = 50


@dataclass(frozen=True, slots=True)
class ParsedFrame:
    tr_id: str
    encrypted: bool
    records: list[list[str]]  # each record trimmed to its table's length


class RealtimeParser:
    def __init__(self, tables: dict[str, tuple[str, ...]] | None = None) -> None:
        self.tables = dict(tables or REALTIME_TABLES)
        self.lengths = {tr: len(fields) for tr, fields in self.tables.items()}
        self.failures = 0
        self.failed_frames: deque[tuple[str, str]] = deque(maxlen=FAILED_FRAMES_KEPT)  # (reason, raw)

    def index(self, tr_id: str) -> dict[str, int]:
        """Field name -> position, for building fast extractors once instead of dicts per record."""
        return {name: i for i, name in enumerate(self.tables[tr_id])}

    def _fail(self, reason: str, raw: str) -> None:
        self.failures += 1
        self.failed_frames.append((reason, raw))

    def parse(self, raw: str) -> ParsedFrame | None:
        """Parse a plaintext data frame; None (and a recorded failure) if it is malformed."""
        parts = raw.split("|", 3)
        if len(parts) != 4 or parts[0] not in ("0", "1"):
            self._fail("not a data frame", raw)
            return None
        enc, tr_id, count_text, payload = parts
        if enc == "1":
            return ParsedFrame(tr_id, True, [[payload]])
        return self.parse_payload(tr_id, count_text, payload, raw)

    def parse_payload(self, tr_id: str, count_text: str, payload: str, raw: str | None = None) -> ParsedFrame | None:
        want = self.lengths.get(tr_id)
        if want is None:
            self._fail(f"unknown tr_id {tr_id}", raw if raw is not None else payload)
            return None
        if not count_text.isdigit() or int(count_text) == 0:
            self._fail("bad record count", raw if raw is not None else payload)
            return None
        count = int(count_text)
        values = payload.split("^")
        total = len(values)
        size, rest = divmod(total, count)
        if rest or size < want:
            self._fail(f"{total} values is not {count} records of >= {want}", raw if raw is not None else payload)
            return None
        if count == 1:
            records = [values if size == want else values[:want]]
        elif size == want:
            records = [values[i:i + want] for i in range(0, total, want)]
        else:
            records = [values[i:i + want] for i in range(0, total, size)]
        return ParsedFrame(tr_id, False, records)
