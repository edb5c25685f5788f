"""Every environment variable the product reads, in one settings object.

Built once at start-up and passed down; nothing else reads ``os.environ``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KisEnv(StrEnum):
    SIM = "sim"  # built-in simulator (the embedded default)
    MOCK = "mock"  # KIS paper trading server (모의투자)
    LIVE = "live"  # KIS production server (실전)


class MarketOverride(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


# Real KIS hosts (reference §1). The simulator's URLs are decided at start-up by `kis up`.
KIS_HOSTS: dict[KisEnv, tuple[str, str]] = {
    KisEnv.LIVE: ("https://openapi.koreainvestment.com:9443", "ws://ops.koreainvestment.com:21000"),
    KisEnv.MOCK: ("https://openapivts.koreainvestment.com:29443", "ws://ops.koreainvestment.com:31000"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    kis_app_key: SecretStr | None = None
    kis_app_secret: SecretStr | None = None
    kis_account_no: str | None = Field(default=None, description="CANO-ACNT_PRDT_CD, e.g. 12345678-01")
    kis_cano: str | None = None
    kis_acnt_prdt_cd_kr: str = "01"
    kis_hts_id: str | None = None
    kis_env: KisEnv = KisEnv.SIM
    kis_mock: bool | None = None
    kis_ws_symbols: str = "005930,000660"
    kis_rest_url: str | None = None
    kis_ws_url: str | None = None
    kis_market_override: MarketOverride | None = None
    kis_db_url: str = "sqlite:///kis_trading.db"
    kis_redis_url: str | None = None
    kis_log_level: str = "INFO"
    kis_state_dir: str = ".kis"  # token cache and lock files (mode 0600)
    kis_operator_token: SecretStr | None = None  # Bearer token for operator endpoints (reconnect, …)
    kis_rest_rate_per_s: float | None = None  # default: 20 live/sim, 2 mock (KIS limits)
    kis_quote_fresh_s: float = 10.0  # a realtime quote older than this is stale → REST fallback
    kis_gateway_host: str = "127.0.0.1"
    kis_gateway_port: int = 8890
    execution_jwt_secret: SecretStr | None = None
    # Orders and risk guards.
    kis_accounts: str = ""  # more accounts: "A2=87654321-01,A3=11112222-01" (KIS_ACCOUNT_NO answers to A1)
    kis_live_trading_enabled: bool = False  # live orders also need the account in the allowlist
    kis_live_account_allowlist: str = ""  # comma-separated account numbers
    kis_max_order_qty: int = 1_000
    kis_max_order_notional: int = 10_000_000  # KRW per order
    kis_daily_max_orders: int = 200
    kis_daily_max_notional: int = 100_000_000  # KRW per account per day
    kis_reconcile_interval_s: float = 30.0
    kis_unknown_order_grace_s: float = 10.0  # an UNKNOWN submit not at KIS after this long never reached it
    kis_git_commit_sha: str | None = None

    @field_validator("kis_market_override", mode="before")
    @classmethod
    def _blank_override_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("kis_env", mode="before")
    @classmethod
    def _lower_env(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def ws_symbols(self) -> list[str]:
        return [s.strip() for s in self.kis_ws_symbols.split(",") if s.strip()]

    @property
    def paper(self) -> bool:
        """True when the KIS side is a paper (모의) server: TR ids get the ``V`` prefix."""
        if self.kis_mock is not None and self.kis_env is not KisEnv.SIM:
            return self.kis_mock or self.kis_env is KisEnv.MOCK
        return self.kis_env is KisEnv.MOCK

    @property
    def rest_rate_per_s(self) -> float:
        if self.kis_rest_rate_per_s is not None:
            return self.kis_rest_rate_per_s
        return 2.0 if self.paper else 20.0

    @property
    def account_no(self) -> str | None:
        """The configured account as CANO-ACNT_PRDT_CD (from KIS_ACCOUNT_NO, else KIS_CANO)."""
        if self.kis_account_no:
            return self.kis_account_no.strip()
        if self.kis_cano:
            return f"{self.kis_cano.strip()}-{self.kis_acnt_prdt_cd_kr.strip()}"
        return None
