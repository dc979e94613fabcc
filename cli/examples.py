"""Worked examples for ``--help``: one place that gives every command without its own epilog one.

``apply(app)`` runs once in ``cli.app`` after every module has registered
its commands, and sets typer's ``epilog`` ("Example: pitboss ...") on each
command that has none, so ``pitboss <command> --help`` always ends with a
command line to copy. tests/cli/test_help.py checks that every command has
one and that each example parses against the command's own options.
"""

from __future__ import annotations

import typer

EXAMPLES: dict[str, tuple[str, ...]] = {
    "demo": ("pitboss demo --duration 90 --speed 60 --out var/demo",),
    "forecast": ("pitboss forecast trace.csv --events events.csv --horizon 2h --model calendar --out forecast.csv "
                 "--plot forecast.png", "pitboss forecast trace.csv --horizon 1h --json"),
    "backtest": ("pitboss backtest trace.csv --events events.csv --horizon 1h --step 12h --test-days 2 "
                 "--models seasonal-naive,calendar --json",),
    "version": ("pitboss version --json",),
    "casino serve": ("pitboss casino serve --port 8000 --database-url sqlite:///var/casino.db",),
    "operator run": ("pitboss operator run --once --namespace casino --prometheus-url http://prometheus:9090",),
    "operator sync-events": ("pitboss operator sync-events --casino-url http://casino-api -n casino --days 30",),
    "operator crds": ("pitboss operator crds --out manifests/crds",),
    "operator validate": ("pitboss operator validate manifests/examples/casino/scalingpolicies.yaml --json",),
    "incidents list": ("pitboss incidents list --state firing --json",),
    "incidents ack": ("pitboss incidents ack 3f2a --for 2h --comment 'rolling back the promo'",),
}


def epilog(lines: tuple[str, ...]) -> str:
    """Typer's epilog: paragraphs separated by blank lines, one example each."""
    return "\n\n".join(f"Example: {line}" for line in lines)


def apply(app: typer.Typer, prefix: str = "") -> None:
    """Give every registered command without an epilog its example from EXAMPLES (recursively)."""
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        path = f"{prefix}{name}"
        if not info.epilog and path in EXAMPLES:
            info.epilog = epilog(EXAMPLES[path])
    for group in app.registered_groups:
        if group.typer_instance is not None and group.name:
            apply(group.typer_instance, f"{prefix}{group.name} ")
