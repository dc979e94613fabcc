"""CLI commands: pitboss incidents list / ack (issue 6).

Registered on the root app by cli.app.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app (filled in by its issue)."""
