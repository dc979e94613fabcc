"""Every command's --help ends with a worked example that parses; shell completion installs and completes.

The examples are parsed by the command's own click parser (options, types,
required arguments), so one that names a flag the command does not have
fails here. Completion runs the installed ``pitboss`` as a real process, as
the shell does.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from cli.app import app

runner = CliRunner()
PITBOSS = str(Path(sys.executable).parent / "pitboss")
READ_COMMANDS = ("status", "explain", "events list", "events import", "simulate", "backtest", "forecast",
                 "incidents list", "trace export", "version", "operator validate")


def commands() -> Iterator[tuple[str, Any]]:
    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    yield from walk(typer.main.get_command(app), [])


ALL = dict(commands())


def test_every_command_is_covered() -> None:
    assert {"status", "explain", "trace export", "trace synth", "events list", "events add", "events delete",
            "events import", "simulate"} <= set(ALL)


@pytest.mark.parametrize("path", sorted(ALL))
def test_help_ends_with_a_worked_example_that_parses(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    examples = re.findall(r"Example: (pitboss .+?)\s*$", result.stdout, flags=re.M)
    assert examples, f"`pitboss {path} --help` has no example"
    for line in examples:
        args = shlex.split(line)[1:]
        assert " ".join(args[: len(path.split())]) == path, line
        cmd = ALL[path]
        cmd.make_context(path, args[len(path.split()):])  # raises on an unknown flag or a bad value


@pytest.mark.parametrize("path", READ_COMMANDS)
def test_read_commands_have_json(path: str) -> None:
    assert any("--json" in p.opts for p in ALL[path].params), path


def test_completion_completes_commands_and_installs(tmp_path: Path) -> None:
    env = {**os.environ, "_PITBOSS_COMPLETE": "complete_bash", "COMP_WORDS": "pitboss events ", "COMP_CWORD": "2"}
    done = subprocess.run([PITBOSS], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["list", "add", "delete", "import"], done
    env = {**os.environ, "_PITBOSS_COMPLETE": "complete_bash", "COMP_WORDS": "pitboss sta", "COMP_CWORD": "1"}
    assert subprocess.run([PITBOSS], env=env, capture_output=True, text=True, timeout=60).stdout.split() == ["status"]

    home = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    installed = subprocess.run([PITBOSS, "--install-completion"], env=home, capture_output=True, text=True,
                               timeout=60)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "pitboss.sh"
    assert "_pitboss_completion" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
