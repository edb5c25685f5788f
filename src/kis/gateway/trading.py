"""The order path's objects, built in the lifespan beside the quote path and sharing its KIS session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kis.broker.orders import KisOrderApi
from kis.gateway.accounts import AccountRegistry
from kis.gateway.audit import Audit, Provenance, config_hash, git_commit_sha
from kis.gateway.errors import ApiError
from kis.gateway.executor import OrderExecutor
from kis.gateway.kill_switch import KillSwitch
from kis.gateway.orders import OrderService
from kis.gateway.portfolio import PortfolioService
from kis.gateway.reconcile import Reconciler
from kis.gateway.risk import RiskGuard, RiskLimits
from kis.storage.db import sessionmaker

if TYPE_CHECKING:
    from kis.gateway.runtime import GatewayRuntime


class Trading:
    def __init__(self, rt: GatewayRuntime) -> None:
        s = rt.settings
        self.rt = rt
        self.sessions = sessionmaker(rt.engine)
        self.accounts = AccountRegistry(rt.endpoint.account_no if rt.endpoint else s.account_no, s.kis_accounts)
        self.limits = RiskLimits.from_settings(s)
        self.provenance = Provenance(git_commit_sha(s.kis_git_commit_sha), config_hash(self.limits.as_dict()))
        self.audit = Audit(rt.clock, self.provenance)
        self.kill_switch = KillSwitch(self.sessions, self.audit, rt.clock)
        broker = KisOrderApi(rt.rest, rt.settings.paper) if rt.rest is not None else None
        self.portfolio = PortfolioService(broker, self.accounts, self.is_owner)
        self.risk = RiskGuard(self.limits, rt.schedule, self.reference_price, self.portfolio.sellable)
        self.orders = OrderService(self.sessions, rt.clock, self.accounts, self.kill_switch, self.risk, self.audit,
                                   s.kis_env.value, self.provenance.git_commit_sha, broker)
        self.orders.is_owner = self.is_owner
        self.executor = OrderExecutor(self.orders)
        self.reconciler = Reconciler(self.orders, self.executor, s.kis_reconcile_interval_s,
                                     s.kis_unknown_order_grace_s)
        self.running = False

    def is_owner(self) -> bool:
        return bool(self.rt.lease and self.rt.lease.is_owner)

    async def reference_price(self, symbol: str) -> int:
        """The price a MARKET order's notional is measured at: the live quote."""
        if self.rt.quotes is None or not self.is_owner():
            raise ApiError(503, "REFERENCE_PRICE_UNAVAILABLE", "no quote available to size a MARKET order",
                           retryable=True)
        quote = await self.rt.quotes.get(symbol)
        return int(quote["price"])

    async def promote(self) -> None:
        if self.orders.broker is None or self.running:
            return
        self.running = True
        await self.executor.start()
        await self.reconciler.start()

    async def demote(self) -> None:
        if not self.running:
            return
        self.running = False
        await self.reconciler.stop()
        await self.executor.stop()

    def on_notice(self, tr_id: str, plaintext: str) -> None:
        self.executor.on_notice(tr_id, plaintext)

    async def metrics(self) -> dict[str, Any]:
        view = self.orders.metrics_view(await self.orders.counts())
        view["executor_last_error"] = self.executor.last_error
        view["reconcile"] = {"runs": self.reconciler.runs, "corrections": self.reconciler.corrections,
                             "last_run": self.reconciler.last_run, "last_error": self.reconciler.last_error}
        return view
