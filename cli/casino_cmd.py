"""CLI commands: ``pitboss casino serve`` runs the reference casino API under uvicorn (issue 2).

Registered on the root app by ``cli.app``. Flags override ``PITBOSS_CASINO_*``
environment variables, which override the defaults in
``casino.config.CasinoSettings``; settings are validated before uvicorn starts
(a bad value is a one-line error and exit 2).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from casino.config import ENV_PREFIX, CasinoSettings
from casino.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from cli.common import guarded

casino_app = typer.Typer(help="The reference casino API that Pitboss manages.", no_args_is_help=True)


def settings_env(settings: CasinoSettings) -> dict[str, str]:
    """The environment that makes ``create_app_from_env`` rebuild exactly these settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name == "admin_token":
            if settings.admin_token_file is not None:
                continue  # the workers read the file themselves: the token stays out of the environment
            value = settings.admin_token.get_secret_value() if settings.admin_token else None
        if isinstance(value, list):
            value = ",".join(value)
        env[ENV_PREFIX + name.upper()] = str(value)
    return env


def metrics_dir(workers: int, given: Path | None) -> Path | None:
    """Where several workers keep their metrics (wiped now); None for one worker without a directory set."""
    path = given or (Path(os.environ[MULTIPROC_ENV]) if os.environ.get(MULTIPROC_ENV) else None)
    if path is None and workers > 1:
        path = Path(tempfile.mkdtemp(prefix="pitboss-casino-metrics-"))
    if path is not None:
        prepare_multiprocess_dir(path)
    return path


@casino_app.command("serve")
@guarded
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port")] = 8000,
    database_url: Annotated[str | None, typer.Option(help="postgresql://... or sqlite:///path")] = None,
    redis_url: Annotated[str | None, typer.Option(help="redis://host:port/db for leaderboards")] = None,
    db_schema: Annotated[str | None, typer.Option(help="PostgreSQL schema to use (created when missing)")] = None,
    admin_token: Annotated[str | None, typer.Option(help="bearer token that may edit the calendar (>= 32 chars)")]
    = None,
    admin_token_file: Annotated[Path | None, typer.Option(help="file holding the admin token")] = None,
    read_database_url: Annotated[list[str] | None, typer.Option(
        help="PostgreSQL read replica for read-only queries (repeat for several)")] = None,
    max_in_flight: Annotated[int | None, typer.Option(help="admission cap on in-flight requests")] = None,
    db_pool_size: Annotated[int | None, typer.Option(help="database connections per worker")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
    metrics_dir_: Annotated[Path | None, typer.Option("--metrics-dir", help=(
        "writable directory for the workers' metrics (default with --workers > 1: a new temporary "
        "directory; also PROMETHEUS_MULTIPROC_DIR)"))] = None,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the casino API (migrations run on start). Defaults: SQLite under var/, in-process leaderboards."""
    import uvicorn

    overrides: dict[str, Any] = {
        "database_url": database_url, "redis_url": redis_url, "db_schema": db_schema, "admin_token": admin_token,
        "max_in_flight": max_in_flight, "db_pool_size": db_pool_size, "admin_token_file": admin_token_file,
        "read_database_url": read_database_url or None,
    }
    settings = CasinoSettings.from_env(**overrides)
    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise ValueError(f"--log-level: expected one of critical, error, warning, info, debug; got {log_level!r}")
    directory = metrics_dir(workers, metrics_dir_)
    os.environ.update(settings_env(settings))
    if directory is not None:
        os.environ[MULTIPROC_ENV] = str(directory)  # before the workers import prometheus-client
    if workers > 1:
        # uvicorn spawns each worker afresh, and a spawned process re-imports __main__: this script would
        # import every command (pandas, statsmodels, kubernetes) into each worker before its health check.
        # uvicorn's own entry point imports only uvicorn; the settings travel in the environment.
        os.execv(sys.executable, [sys.executable, "-m", "uvicorn", "casino.app:create_app_from_env", "--factory",
                                  "--host", host, "--port", str(port), "--workers", str(workers),
                                  "--log-level", log_level, "--access-log" if access_log else "--no-access-log",
                                  "--timeout-graceful-shutdown", "5", "--timeout-worker-healthcheck", "30"])
    uvicorn.run("casino.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level=log_level, timeout_graceful_shutdown=5)


def register(app: typer.Typer) -> None:
    """Add ``pitboss casino ...`` to the root app."""
    app.add_typer(casino_app, name="casino")
