"""Balances and positions from inquire-balance (all pages); always lists, accounts always masked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kis.broker.errors import KisError, RestRateLimitCooldownError
from kis.broker.orders import KisOrderApi
from kis.gateway.accounts import AccountRegistry
from kis.gateway.errors import ApiError


class PortfolioService:
    def __init__(self, broker: KisOrderApi | None, accounts: AccountRegistry, is_owner: Callable[[], bool]) -> None:
        self.broker = broker
        self.accounts = accounts
        self.is_owner = is_owner

    async def _fetch(self, account_id: str | None):  # type: ignore[no-untyped-def]
        if self.broker is None:
            raise ApiError(503, "PORTFOLIO_PROVIDER_NOT_CONFIGURED", "no KIS portfolio provider is configured")
        targets = [self.accounts.resolve(account_id)] if account_id else self.accounts.all()
        if not targets:
            raise ApiError(503, "PORTFOLIO_PROVIDER_NOT_CONFIGURED", "no KIS account is configured")
        if not self.is_owner():
            raise ApiError(503, "SESSION_STANDBY", "this gateway does not own the KIS session", retryable=True)
        out = []
        for acct in targets:
            try:
                out.append((acct, *await self.broker.balance(acct.ref)))
            except RestRateLimitCooldownError:
                raise ApiError(503, "REST_RATE_LIMIT_COOLDOWN", "KIS REST rate limit reached; retry shortly",
                               retryable=True, retry_after=1) from None
            except KisError as err:
                raise ApiError(502, "KIS_ERROR", f"KIS answered {err.code}", retryable=err.retryable) from None
        return out

    async def balances(self, account_id: str | None) -> list[dict[str, Any]]:
        rows = []
        for acct, _positions, summary in await self._fetch(account_id):
            if summary is None:
                continue
            rows.append({"account_id": acct.alias, "account": acct.masked, "currency": "KRW", "cash": summary.cash,
                         "d2_cash": summary.d2_cash, "securities_eval": summary.securities_eval,
                         "total_eval": summary.total_eval, "purchase_total": summary.purchase_total,
                         "pnl_total": summary.pnl_total})
        return rows

    async def positions(self, account_id: str | None) -> list[dict[str, Any]]:
        rows = []
        for acct, positions, _summary in await self._fetch(account_id):
            for p in positions:
                if p.qty <= 0:
                    continue
                rows.append({"account_id": acct.alias, "account": acct.masked, "symbol": p.symbol, "name": p.name,
                             "qty": p.qty, "sellable_qty": p.sellable_qty, "avg_price": p.avg_price,
                             "purchase_amount": p.purchase_amount, "current_price": p.current_price,
                             "eval_amount": p.eval_amount, "pnl": p.pnl, "pnl_rate": p.pnl_rate})
        return rows

    async def sellable(self, account, symbol: str) -> int:  # type: ignore[no-untyped-def]
        if self.broker is None or not self.is_owner():
            raise ApiError(503, "PORTFOLIO_PROVIDER_NOT_CONFIGURED", "cannot check holdings without the KIS session",
                           retryable=True)
        try:
            positions, _ = await self.broker.balance(account.ref)
        except KisError as err:
            raise ApiError(503, "HOLDINGS_UNAVAILABLE", f"cannot read holdings from KIS ({err.code})",
                           retryable=True) from None
        return sum(p.sellable_qty for p in positions if p.symbol == symbol)
