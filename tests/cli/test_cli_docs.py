"""Every concrete `pitboss` command line in docs/cli.md parses against the CLI (flags, types, arguments).

Synopsis lines (with ``[...]`` or ``|``) are skipped; the commands' behaviour
is tested in the test_*_cmd.py files beside this one, and the README's tour
runs them for real (tests/test_readme.py).
"""

from __future__ import annotations

import re
import shlex

import pytest
import typer.main

from cli.app import app
from tests.conftest import REPO

DOC = REPO / "docs" / "cli.md"


def command_lines() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    lines = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S):
        for raw in body.replace("\\\n", " ").splitlines():
            line = raw.strip().removeprefix("$ ") if lang == "console" else raw.strip()
            if line.startswith("pitboss ") and "[" not in line and "|" not in line:
                lines.append(line)
    return lines


def leaf(args: list[str]) -> tuple[object, list[str]]:
    cmd: object = typer.main.get_command(app)
    while getattr(cmd, "commands", None) and args and args[0] in cmd.commands:  # type: ignore[attr-defined]
        cmd, args = cmd.commands[args[0]], args[1:]  # type: ignore[attr-defined]
    return cmd, args


def test_the_page_has_examples() -> None:
    assert len(command_lines()) >= 8


@pytest.mark.parametrize("line", command_lines())
def test_documented_command_parses(line: str) -> None:
    cmd, rest = leaf(shlex.split(line)[1:])
    cmd.make_context("pitboss", rest)  # type: ignore[attr-defined]
