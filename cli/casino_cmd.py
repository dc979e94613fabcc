"""CLI commands: pitboss casino serve (issue 2).

Registered on the root app by cli.app.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app (filled in by its issue)."""
