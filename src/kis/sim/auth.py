"""App keys, access tokens and WebSocket approval keys, with KIS's issuance rules.

- tokenP: at most one issuance per minute per app key (403 EGW00133); within 6 h of an issuance the
  same token comes back; tokens live 24 h and carry an absolute KST expiry.
- Approval: a fresh 36-char key on every call; no limit.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt

from kis.clock import Clock

TOKEN_LIFETIME = timedelta(hours=24)
REISSUE_SAME_WITHIN = timedelta(hours=6)


class AuthError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class AppCredential:
    app_key: str
    app_secret: str
    hts_id: str | None = None


@dataclass
class IssuedToken:
    token: str
    app_key: str
    issued_at: datetime
    expires_at: datetime
    revoked: bool = False


class AuthRegistry:
    def __init__(self, clock: Clock, credentials_file: str | Path | None = None,
                 token_min_interval_s: float = 60.0) -> None:
        self.clock = clock
        self.token_min_interval_s = token_min_interval_s
        self._signing_key = secrets.token_bytes(64)
        self.credentials: dict[str, AppCredential] | None = None
        if credentials_file:
            data = json.loads(Path(credentials_file).read_text(encoding="utf-8"))
            self.credentials = {
                c["app_key"]: AppCredential(c["app_key"], c["app_secret"], c.get("hts_id"))
                for c in data.get("apps", [])
            }
        self.tokens: dict[str, IssuedToken] = {}
        self._latest: dict[str, IssuedToken] = {}
        self._last_issue_mono: dict[str, float] = {}
        self.approvals: dict[str, str] = {}  # approval key -> app key
        self.issuances = 0

    def check_app(self, app_key: str | None, app_secret: str | None) -> str:
        """Validate credentials; returns the app key or raises AuthError with the EGW code."""
        if not app_key:
            raise AuthError("EGW00102")
        if not app_secret:
            raise AuthError("EGW00104")
        if self.credentials is not None:
            cred = self.credentials.get(app_key)
            if cred is None:
                raise AuthError("EGW00103")
            if not secrets.compare_digest(cred.app_secret, app_secret):
                raise AuthError("EGW00105")
        return app_key

    def is_known_app(self, app_key: str) -> bool:
        return self.credentials is None or app_key in self.credentials

    def issue_token(self, app_key: str, app_secret: str) -> IssuedToken:
        self.check_app(app_key, app_secret)
        mono = self.clock.monotonic()
        last = self._last_issue_mono.get(app_key)
        if last is not None and mono - last < self.token_min_interval_s:
            raise AuthError("EGW00133")
        self._last_issue_mono[app_key] = mono
        now = self.clock.now()
        prev = self._latest.get(app_key)
        if prev and not prev.revoked and now - prev.issued_at < REISSUE_SAME_WITHIN and now < prev.expires_at:
            return prev
        expires = (now + TOKEN_LIFETIME).replace(microsecond=0)
        claims = {
            "sub": "token",
            "aud": hashlib.sha256(app_key.encode()).hexdigest()[:36],
            "jti": str(uuid.uuid4()),
            "iss": "unogw",
            "prdt_cd": "",
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        # Header typ-first, as KIS serialises it: real tokens all start "eyJ0eXAiOiJKV1Qi…" (DOC example).
        token = jwt.encode(claims, self._signing_key, algorithm="HS512", sort_headers=False)
        issued = IssuedToken(token, app_key, now, expires)
        self.tokens[token] = issued
        self._latest[app_key] = issued
        self.issuances += 1
        return issued

    def revoke(self, app_key: str, app_secret: str, token: str) -> None:
        self.check_app(app_key, app_secret)
        issued = self.tokens.get(token)
        if issued is None or issued.app_key != app_key or issued.revoked:
            raise AuthError("EGW00121")
        issued.revoked = True

    def check_token(self, token: str, app_key: str) -> IssuedToken:
        issued = self.tokens.get(token)
        if issued is None or issued.revoked or issued.app_key != app_key:
            raise AuthError("EGW00121")
        if self.clock.now() >= issued.expires_at:
            raise AuthError("EGW00123")
        return issued

    def expire_all(self) -> int:
        """Fault injection: every issued token is past its expiry from now on."""
        now = self.clock.now()
        for issued in self.tokens.values():
            issued.expires_at = min(issued.expires_at, now)
        self._last_issue_mono.clear()
        return len(self.tokens)

    def issue_approval(self, app_key: str, secret_key: str) -> str:
        self.check_app(app_key, secret_key)
        key = str(uuid.uuid4())
        self.approvals[key] = app_key
        return key

    def hts_id(self, app_key: str) -> str | None:
        if self.credentials is None:
            return None
        cred = self.credentials.get(app_key)
        return cred.hts_id if cred else None
