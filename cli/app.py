"""The root `pitboss` typer app: registers every command group's module.

Entry point of the ``pitboss`` console script (``cli.app:main``).
"""

from __future__ import annotations

import typer

from cli import casino_cmd, dashboards_cmd, demo_cmd, forecast_cmd, incidents_cmd, operator_cmd, simulate_cmd

app = typer.Typer(
    name="pitboss",
    help="Calendar-aware predictive auto-scaling for online casino backends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def root() -> None:
    """Calendar-aware predictive auto-scaling for online casino backends."""


for module in (demo_cmd, casino_cmd, forecast_cmd, simulate_cmd, operator_cmd, incidents_cmd, dashboards_cmd):
    module.register(app)


@app.command("version")
def version() -> None:
    """Print the Pitboss version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("pitboss"))


def main() -> None:
    """Console-script entry point."""
    app()
