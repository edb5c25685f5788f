"""Typed KIS errors: the adapter turns every KIS answer that is not a success into one of these.

Services above the adapter branch on the type (and ``retryable``/``outcome_known``), never on KIS codes.
"""

from __future__ import annotations


class KisError(Exception):
    """Base class. ``code`` is the KIS code (msg_cd / error_code) or a transport marker."""

    retryable = False
    # False when KIS may or may not have acted on the request (a timeout after sending an order).
    outcome_known = True

    def __init__(self, code: str, message: str = "", http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.http_status = http_status


class RestRateLimitCooldownError(KisError):
    """EGW00201 / EGW00215 / HTTP 429: the call was not processed; retry after a cooldown."""

    retryable = True


class TokenExpiredError(KisError):
    """EGW00123: refresh the token and retry once."""

    retryable = True


class TokenInvalidError(KisError):
    """EGW00121 / EGW00205: the token is not accepted; invalidate, refresh and retry once."""

    retryable = True


class TokenIssueTooSoonError(KisError):
    """EGW00133: tokenP at most once a minute per app key."""

    retryable = True


class CredentialsError(KisError):
    """EGW00102–EGW00105: app key / secret missing or invalid — an operator must fix the configuration."""


class TrMismatchError(KisError):
    """EGW00213 / OPSQ0002: the TR id is not valid on this host (paper vs live) — a configuration error."""


class KisRequestError(KisError):
    """OPSQ2001 and other input checks: the request itself is wrong; retrying cannot help."""


class KisBusinessError(KisError):
    """A business reject (rt_cd other than "0" in an HTTP 200): insufficient cash, market closed, …"""

    def __init__(self, code: str, message: str, rt_cd: str, http_status: int | None = 200) -> None:
        super().__init__(code, message, http_status)
        self.rt_cd = rt_cd


class KisServerError(KisError):
    """HTTP 5xx that is not a known gateway code: KIS may have acted on a write."""

    retryable = True
    outcome_known = False


class KisTransportError(KisError):
    """Timeout, reset, refused: nothing or anything may have happened at KIS."""

    retryable = True
    outcome_known = False


_BY_CODE: dict[str, type[KisError]] = {
    "EGW00201": RestRateLimitCooldownError,
    "EGW00215": RestRateLimitCooldownError,
    "EGW00123": TokenExpiredError,
    "EGW00121": TokenInvalidError,
    "EGW00205": TokenInvalidError,
    "EGW00133": TokenIssueTooSoonError,
    "EGW00102": CredentialsError,
    "EGW00103": CredentialsError,
    "EGW00104": CredentialsError,
    "EGW00105": CredentialsError,
    "EGW00213": TrMismatchError,
    "OPSQ0002": TrMismatchError,
    "OPSQ2001": KisRequestError,
    "OPSQ2002": KisRequestError,
    "OPSQ9995": KisRequestError,
    "OPSQ9997": KisRequestError,
    "OPSQ9999": KisRequestError,
}


def error_for(code: str, message: str, http_status: int | None, rt_cd: str | None = None) -> KisError:
    """Map a KIS answer to its typed error (table: reference §5)."""
    if http_status == 429:
        return RestRateLimitCooldownError(code or "HTTP429", message, http_status)
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(code, message, http_status)
    if http_status is not None and http_status >= 500:
        return KisServerError(code or f"HTTP{http_status}", message, http_status)
    if rt_cd is not None and rt_cd != "0":
        return KisBusinessError(code, message, rt_cd, http_status)
    return KisError(code or f"HTTP{http_status}", message, http_status)
