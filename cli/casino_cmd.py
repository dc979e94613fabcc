"""CLI commands: ``pitboss casino serve`` runs the reference casino API under uvicorn (issue 2).

Registered on the root app by ``cli.app``. Flags override ``PITBOSS_CASINO_*``
environment variables, which override the defaults in
``casino.config.CasinoSettings``; settings are validated before uvicorn starts
(a bad value is a one-line error and exit 2).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from casino.config import ENV_PREFIX, CasinoSettings
from cli.common import guarded

casino_app = typer.Typer(help="The reference casino API that Pitboss manages.", no_args_is_help=True)


def settings_env(settings: CasinoSettings) -> dict[str, str]:
    """The environment that makes ``create_app_from_env`` rebuild exactly these settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name == "admin_token":
            value = settings.admin_token.get_secret_value() if settings.admin_token else None
        env[ENV_PREFIX + name.upper()] = str(value)
    return env


@casino_app.command("serve")
@guarded
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port")] = 8000,
    database_url: Annotated[str | None, typer.Option(help="postgresql://... or sqlite:///path")] = None,
    redis_url: Annotated[str | None, typer.Option(help="redis://host:port/db for leaderboards")] = None,
    db_schema: Annotated[str | None, typer.Option(help="PostgreSQL schema to use (created when missing)")] = None,
    admin_token: Annotated[str | None, typer.Option(help="bearer token that may edit the calendar")] = None,
    max_in_flight: Annotated[int | None, typer.Option(help="admission cap on in-flight requests")] = None,
    db_pool_size: Annotated[int | None, typer.Option(help="database connections per worker")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the casino API (migrations run on start). Defaults: SQLite under var/, in-process leaderboards."""
    import uvicorn

    overrides: dict[str, Any] = {
        "database_url": database_url, "redis_url": redis_url, "db_schema": db_schema, "admin_token": admin_token,
        "max_in_flight": max_in_flight, "db_pool_size": db_pool_size,
    }
    settings = CasinoSettings.from_env(**overrides)
    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise ValueError(f"--log-level: expected one of critical, error, warning, info, debug; got {log_level!r}")
    os.environ.update(settings_env(settings))
    uvicorn.run("casino.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level=log_level, timeout_graceful_shutdown=5)


def register(app: typer.Typer) -> None:
    """Add ``pitboss casino ...`` to the root app."""
    app.add_typer(casino_app, name="casino")
