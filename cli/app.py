"""The root `pitboss` typer app: registers every command group's module.

Entry point of the ``pitboss`` console script (``cli.app:main``).
"""

from __future__ import annotations

import typer

from cli import (
    casino_cmd,
    dashboards_cmd,
    demo_cmd,
    events_cmd,
    examples,
    explain_cmd,
    forecast_cmd,
    incidents_cmd,
    operator_cmd,
    simulate_cmd,
    status_cmd,
    trace_cmd,
)

app = typer.Typer(
    name="pitboss",
    help="Calendar-aware predictive auto-scaling for online casino backends.",
    no_args_is_help=True,
    add_completion=True,  # pitboss --install-completion / --show-completion
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Calendar-aware predictive auto-scaling for online casino backends."""


for module in (demo_cmd, casino_cmd, forecast_cmd, simulate_cmd, operator_cmd, incidents_cmd, dashboards_cmd):
    module.register(app)
for module in (status_cmd, trace_cmd, events_cmd, explain_cmd):  # the SRE's commands (issue 13)
    module.register(app)


@app.command("version")
def version(json_out: bool = typer.Option(False, "--json", help="print {\"version\": ...} as JSON")) -> None:
    """Print the Pitboss version."""
    import json
    from importlib.metadata import version as dist_version

    typer.echo(json.dumps({"version": dist_version("pitboss")}) if json_out else dist_version("pitboss"))


examples.apply(app)  # a worked example at the end of every command's --help


def main() -> None:
    """Console-script entry point."""
    app()
