"""JSON structured logs (structlog) with secrets and account numbers masked.

Masking is a processor, so every log line passes through it whatever the caller wrote.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

import orjson
import structlog

_SECRET_KEYS = re.compile(
    r"(secret|token|appkey|app_key|approval_key|password|authorization|jwt|^key$|^iv$)", re.IGNORECASE
)
_ACCOUNT_KEYS = re.compile(r"(account|cano|acnt_no)", re.IGNORECASE)
# CANO-ACNT_PRDT_CD standing alone in free text (keyed fields are masked by key instead).
_ACCOUNT_IN_TEXT = re.compile(r"(?<!\d)\d{8}-\d{2}(?!\d)")
_BEARER_IN_TEXT = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+")


def mask_secret(value: object) -> str:
    """Keep only enough to tell two secrets apart: length and the last 4 characters."""
    text = str(value)
    if len(text) <= 4:
        return "***"
    return f"***{text[-4:]}"


def mask_account(value: object) -> str:
    """12345678-01 -> 1234****-01: enough for an operator to recognise, not to use."""
    text = str(value)
    match = re.fullmatch(r"(\d{4})\d{4}(-?\d{2})?", text)
    if match:
        return f"{match.group(1)}****{match.group(2) or ''}"
    return mask_secret(text)


def mask_text(text: str) -> str:
    text = _BEARER_IN_TEXT.sub(r"\1***", text)
    return _ACCOUNT_IN_TEXT.sub(lambda m: mask_account(m.group(0)), text)


def _mask_value(key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if _SECRET_KEYS.search(key):
        return mask_secret(value)
    if _ACCOUNT_KEYS.search(key):
        return mask_account(value)
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    return value


def mask_event(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if k in ("timestamp", "level", "logger") else _mask_value(k, v)) for k, v in event_dict.items()}


def _dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route structlog and stdlib logging (uvicorn, websockets) to one JSON stream."""
    processors: Iterable[Any] = (
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_event,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer(serializer=_dumps)],
            foreign_pre_chain=list(processors),
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        # Below-level events are dropped before any processor (masking included) spends time on them.
        processors=[structlog.stdlib.filter_by_level, *processors,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
