"""The order API and recovery suites again, with the gateway's database on PostgreSQL instead of SQLite.

Each class gets a fresh PostgreSQL database (emptied before every test); a PostgreSQL server that cannot
be reached fails these tests rather than skipping them — CI starts one.
"""

import unittest

import integration.test_orders_api as api
import integration.test_orders_recovery as recovery
from kis_testing import PostgresDatabaseMixin


class PostgresGateway(PostgresDatabaseMixin):
    pg_reset_each_test = True

    def gateway_env(self) -> dict[str, str]:
        return {**super().gateway_env(), "KIS_DB_URL": self.pg_url}  # type: ignore[misc]

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()  # type: ignore[misc]
        # Not silently on SQLite: the running gateway's engine is PostgreSQL (asyncpg).
        engine = self.runtime.engine  # type: ignore[attr-defined]
        self.assertEqual((engine.dialect.name, engine.dialect.driver), ("postgresql", "asyncpg"))  # type: ignore[attr-defined]


class PgKillSwitchDefaultTest(PostgresGateway, api.KillSwitchDefaultTest):
    pass


class PgPlaceOrderTest(PostgresGateway, api.PlaceOrderTest):
    pass


class PgGuardsTest(PostgresGateway, api.GuardsTest):
    pass


class PgDailyLimitConcurrencyTest(PostgresGateway, api.DailyLimitConcurrencyTest):
    pass


class PgClosedMarketTest(PostgresGateway, api.ClosedMarketTest):
    pass


class PgModifyCancelTest(PostgresGateway, api.ModifyCancelTest):
    pass


class PgPortfolioTest(PostgresGateway, api.PortfolioTest):
    pass


class PgUnknownOutcomeTest(PostgresGateway, recovery.UnknownOutcomeTest):
    pass


class PgInFlightSubmitTest(PostgresGateway, recovery.InFlightSubmitTest):
    pass


class PgExecutorStopTest(PostgresGateway, recovery.ExecutorStopTest):
    pass


class PgDayRolloverTest(PostgresGateway, recovery.DayRolloverTest):
    pass


class PgFillRecordingTest(PostgresGateway, recovery.FillRecordingTest):
    pass


class PgNoticeRaceTest(PostgresGateway, recovery.NoticeRaceTest):
    pass


class PgLostNoticesTest(PostgresGateway, recovery.LostNoticesTest):
    pass


class PgKillNineTest(PostgresDatabaseMixin, recovery.KillNineTest):
    """kill -9 mid-submit, with the gateway processes and the kill-switch CLI on one PostgreSQL database."""

    pg_reset_each_test = True

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.env["KIS_DB_URL"] = self.pg_url


if __name__ == "__main__":
    unittest.main()
