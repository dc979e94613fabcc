"""Every `pitboss` example in README.md runs, in order, and the error example says what it shows.

Runs the installed console script in a scratch directory (the quick tour
writes trace.csv and friends there), so the README cannot drift from the CLI.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, in_repo

README = REPO / "README.md"


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)]


def _pitboss() -> str:
    exe = Path(sys.executable).parent / "pitboss"
    found = str(exe) if exe.exists() else shutil.which("pitboss")
    if found is None:
        pytest.fail("the pitboss console script is not installed (make install)")
    return found


def _run(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = [in_repo(a) for a in shlex.split(line)]
    assert args[0] == "pitboss", line
    return subprocess.run([_pitboss(), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_quick_tour_runs_in_order(tmp_path: Path) -> None:
    bash = [body for lang, body in _blocks(README.read_text()) if lang == "bash" and "pitboss " in body]
    lines = [ln.strip() for body in bash for ln in body.splitlines() if ln.strip().startswith("pitboss ")]
    assert len(lines) >= 5, "the quick tour lost its examples"
    for line in lines:
        result = _run(line, tmp_path)
        assert result.returncode == 0, f"{line}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}"
    for produced in ("trace.csv", "events.csv", "forecast.csv", "forecast.png"):
        assert (tmp_path / produced).stat().st_size > 0, produced


def test_error_example_matches(tmp_path: Path) -> None:
    consoles = [body for lang, body in _blocks(README.read_text()) if lang == "console"]
    assert consoles, "README lost its bad-input example"
    body = consoles[0].splitlines()
    command = body[0].removeprefix("$ ").strip()
    expected = body[1].strip()
    # The error example needs a valid trace to get as far as the horizon.
    (tmp_path / "trace.csv").write_text(
        "timestamp,value\n" + "".join(f"2024-01-01T00:{m:02d}:00,{m + 1}\n" for m in range(60))
    )
    result = _run(command, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [expected]
