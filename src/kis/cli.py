"""The ``kis`` command."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from kis.config import Settings
from kis.logs import configure_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help="KIS Trading Gateway")

# The real KIS ports, so a client configured for KIS needs only the host changed.
LIVE_PORTS = (9443, 21000)
PAPER_PORTS = (29443, 31000)


def _parse_faults(values: list[str]) -> dict[str, str]:
    faults: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--fault takes name=value, got {item!r}")
        faults[name.strip()] = value.strip()
    return faults


async def _run_sim(config, host: str, rest_port: int, ws_port: int) -> None:  # type: ignore[no-untyped-def]
    from kis.sim.server import SimServer

    server = SimServer(config, host=host, rest_port=rest_port, ws_port=ws_port)
    await server.start()
    typer.echo(f"KIS simulator ({'paper' if config.paper else 'live'} host)\n"
               f"  REST      {server.rest_url}\n  WebSocket {server.ws_url}\n"
               f"  admin     {server.rest_url}/__sim/stats", err=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


@app.command()
def sim(
    rest_port: Annotated[int | None, typer.Option(help="REST port (default 9443, paper 29443)")] = None,
    ws_port: Annotated[int | None, typer.Option(help="WebSocket port (default 21000, paper 31000)")] = None,
    paper: Annotated[bool, typer.Option("--paper", help="act as the paper (모의) host: V TR ids, 2 calls/s")] = False,
    seed: Annotated[int, typer.Option(help="random-walk seed")] = 0,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    session_mode: Annotated[str, typer.Option(help="'always' open, or 'krx' to follow KRX/NYSE hours")] = "always",
    credentials: Annotated[str | None, typer.Option(help="JSON file of accepted app keys")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="REST calls/s per app key (default 20, paper 2)")] = None,
    tick_interval: Annotated[float, typer.Option(help="seconds between market steps")] = 0.25,
    pingpong_interval: Annotated[float, typer.Option(help="seconds between server PINGPONGs")] = 10.0,
    fault: Annotated[list[str] | None, typer.Option(help="fault switch name=value (repeatable)")] = None,
) -> None:
    """Run the KIS simulator (REST + WebSocket) on loopback."""
    from kis.sim.engine import SimConfig
    from kis.sim.faults import Faults

    settings = Settings()
    configure_logging(settings.kis_log_level)
    if session_mode not in ("always", "krx"):
        raise typer.BadParameter("--session-mode is 'always' or 'krx'")
    faults = Faults()
    try:
        faults.update(_parse_faults(fault or []))
    except KeyError as err:
        raise typer.BadParameter(f"unknown fault {err.args[0]!r}; known: {', '.join(Faults.names())}") from None
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    ports = PAPER_PORTS if paper else LIVE_PORTS
    config = SimConfig(paper=paper, seed=seed, rate_limit_per_s=rate_limit, session_mode=session_mode,
                       credentials_file=credentials, tick_interval_s=tick_interval,
                       pingpong_interval_s=pingpong_interval, faults=faults)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_sim(config, host, rest_port or ports[0], ws_port or ports[1]))


@app.command()
def up(
    host: Annotated[str, typer.Option(help="bind address for every server")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="gateway port (default KIS_GATEWAY_PORT, 8890)")] = None,
) -> None:
    """Start the embedded default: the KIS simulator and the gateway on loopback (SQLite).

    With KIS_ENV=mock|live and real credentials the gateway talks to KIS itself and no simulator starts;
    KIS_REST_URL/KIS_WS_URL point it at any KIS-compatible server.
    """
    from kis.config import KisEnv

    settings = Settings()
    configure_logging(settings.kis_log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_up(settings, host, port or settings.kis_gateway_port,
                            embedded=settings.kis_env is KisEnv.SIM and not settings.kis_rest_url))


async def _run_up(settings: Settings, host: str, port: int, embedded: bool) -> None:
    import uvicorn

    from kis.gateway.app import create_app
    from kis.sim.engine import SimConfig
    from kis.sim.server import SimServer

    sim = None
    if embedded:
        rest_port, ws_port = PAPER_PORTS if settings.paper else LIVE_PORTS
        sim = SimServer(SimConfig(paper=settings.paper), host=host, rest_port=rest_port, ws_port=ws_port)
        await sim.start()
    app_ = create_app(settings, configure_logs=False, sim_server=sim)
    server = uvicorn.Server(uvicorn.Config(app_, host=host, port=port, log_config=None, access_log=False))
    lines = [f"KIS Trading Gateway  http://{host}:{port}   (try: curl -s http://{host}:{port}/v1/quotes/005930)"]
    if sim is not None:
        lines.append(f"KIS simulator        REST {sim.rest_url}   WebSocket {sim.ws_url}   "
                     f"admin {sim.rest_url}/__sim/stats")
    try:
        serve = asyncio.create_task(server.serve())
        # uvicorn exposes no start-up event to await
        while not server.started and not serve.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if server.started:
            typer.echo("\n".join(lines), err=True)
        await serve
    finally:
        if sim is not None:
            await sim.stop()


kill_switch_app = typer.Typer(no_args_is_help=True, help="The kill switch (latest system_state row wins).")
app.add_typer(kill_switch_app, name="kill-switch")


async def _kill_switch(action: str, reason: str | None, by: str | None) -> dict[str, object]:
    from kis.clock import SystemClock
    from kis.gateway.audit import Audit, Provenance, config_hash, git_commit_sha
    from kis.gateway.kill_switch import KillSwitch
    from kis.gateway.risk import RiskLimits
    from kis.storage.db import create_engine, sessionmaker
    from kis.storage.migrate import upgrade_async

    settings = Settings()
    await upgrade_async(settings.kis_db_url)
    engine = create_engine(settings.kis_db_url)
    try:
        clock = SystemClock()
        limits = RiskLimits.from_settings(settings)  # the same config hash the gateway's events carry
        audit = Audit(clock, Provenance(git_commit_sha(settings.kis_git_commit_sha), config_hash(limits.as_dict())))
        switch = KillSwitch(sessionmaker(engine), audit, clock)
        if action == "status":
            return await switch.status()
        return await switch.set(action == "on", reason or "", by or "")
    finally:
        await engine.dispose()


def _print_kill_switch(action: str, reason: str | None, by: str | None) -> None:
    import json

    if action != "status" and (not reason or not reason.strip() or not by or not by.strip()):
        raise typer.BadParameter("--reason and --by are required to change the kill switch")
    try:
        result = asyncio.run(_kill_switch(action, reason, by))
    except Exception as err:  # an operator command: a clear line, not a traceback
        from kis.logs import mask_text

        typer.echo(f"kill switch {action} failed: {mask_text(str(err))}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result, ensure_ascii=False))


@kill_switch_app.command("status")
def kill_switch_status() -> None:
    """Show the kill switch (ACTIVE unless the latest row says inactive)."""
    _print_kill_switch("status", None, None)


@kill_switch_app.command("on")
def kill_switch_on(
    reason: Annotated[str, typer.Option(help="why trading stops (recorded)")],
    by: Annotated[str, typer.Option(help="who decided (recorded)")],
) -> None:
    """Activate the kill switch: every order is refused with zero broker calls."""
    _print_kill_switch("on", reason, by)


@kill_switch_app.command("off")
def kill_switch_off(
    reason: Annotated[str, typer.Option(help="why trading may resume (recorded)")],
    by: Annotated[str, typer.Option(help="who decided (recorded)")],
) -> None:
    """Deactivate the kill switch (recorded in system_state and event_log)."""
    _print_kill_switch("off", reason, by)


@app.command("validate-keys")
def validate_keys(
    force_window: Annotated[
        bool, typer.Option(help="run outside the gap windows (never against KIS_ENV=live)")] = False,
) -> None:
    """Check KIS_APP_KEY/KIS_APP_SECRET against KIS (token + approval key) — only in the gap windows
    17:00–22:00 and 06:00–08:00 KST, when both markets are closed; otherwise skip with the reason."""
    import json

    from kis.clock import SystemClock
    from kis.config import KIS_HOSTS, KisEnv
    from kis.keycheck import KeyCheckResult, in_gap_window

    settings = Settings()
    configure_logging(settings.kis_log_level)
    now = SystemClock().now()
    result: KeyCheckResult
    if settings.kis_env is KisEnv.SIM and not settings.kis_rest_url:
        result = KeyCheckResult(False, False, "KIS_ENV=sim: the built-in simulator needs no key check")
    elif not in_gap_window(now) and not (force_window and settings.kis_env is not KisEnv.LIVE):
        result = KeyCheckResult(False, False, f"skipped: {now:%H:%M} KST is outside the gap windows "
                                              "17:00-22:00 and 06:00-08:00 (a market is open)")
    elif not settings.kis_app_key or not settings.kis_app_secret:
        result = KeyCheckResult(False, False, "KIS_APP_KEY and KIS_APP_SECRET are not set")
    else:
        rest_url = settings.kis_rest_url or KIS_HOSTS[settings.kis_env][0]
        result = asyncio.run(_check_keys(rest_url, settings))
    typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    raise typer.Exit(0 if result.ok or not result.ran else 1)


async def _check_keys(rest_url: str, settings: Settings):  # type: ignore[no-untyped-def]
    from pathlib import Path

    import httpx

    from kis.broker.auth import TokenManager
    from kis.broker.errors import KisError
    from kis.broker.token_store import FileTokenStore, store_key
    from kis.clock import SystemClock
    from kis.keycheck import KeyCheckResult

    assert settings.kis_app_key and settings.kis_app_secret
    key, secret = settings.kis_app_key.get_secret_value(), settings.kis_app_secret.get_secret_value()
    async with httpx.AsyncClient(base_url=rest_url, timeout=10) as http:
        tokens = TokenManager(http, key, secret, store_key(settings.kis_env.value, key, rest_url),
                              FileTokenStore(Path(settings.kis_state_dir)), SystemClock())
        try:
            await tokens.get(max_wait=5)
            await tokens.approval_key()
        except KisError as err:
            return KeyCheckResult(True, False, f"KIS refused the credentials: {err.code}")
    return KeyCheckResult(True, True, "token and approval key issued")


@app.command("init-db")
def init_db() -> None:
    """Create or upgrade the schema (same as python -m kis.storage.init_db)."""
    from kis.storage.init_db import main as init_main

    raise typer.Exit(init_main())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
