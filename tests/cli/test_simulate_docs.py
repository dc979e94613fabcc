"""Every `pitboss simulate` example in docs/simulate.md runs as documented (through CliRunner).

Paths to data/ point at the repository's data folder; `sim.png` goes to a
temporary directory. An example followed by a `# error: ... (exit 2)` line
must fail with exactly that one-line error.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.conftest import REPO, in_repo

DOC = REPO / "docs" / "simulate.md"


def examples() -> list[tuple[str, str | None]]:
    """(command, expected error line or None) for each `pitboss simulate` in a bash block."""
    text = DOC.read_text(encoding="utf-8")
    out: list[tuple[str, str | None]] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        lines = [line.strip() for line in joined.splitlines() if line.strip()]
        for i, line in enumerate(lines):
            if line.startswith("pitboss simulate"):
                nxt = lines[i + 1] if i + 1 < len(lines) else ""
                error = None
                if nxt.startswith("# error:"):
                    error = nxt.removeprefix("# ").split("   (exit")[0].strip()
                out.append((line, error))
    return out


def test_the_doc_has_examples() -> None:
    found = examples()
    assert len(found) >= 4
    assert any(error for _, error in found)
    assert any("--json" in cmd for cmd, _ in found)


@pytest.mark.parametrize(("command", "error"), examples(), ids=lambda v: str(v)[:60] if v else "ok")
def test_documented_example(command: str, error: str | None, tmp_path: Path, data_dir: Path) -> None:
    args = shlex.split(command)[1:]
    args = [in_repo(a) for a in args]
    args = [str(tmp_path / a) if a.endswith(".png") else a for a in args]
    result = CliRunner().invoke(app, args)
    if error is not None:
        assert result.exit_code == 2
        assert result.stderr.strip() == error
        return
    assert result.exit_code == 0, result.output
    if "--json" in args:
        out = json.loads(result.stdout)
        assert set(out) == {"series", "steps", "policies"}
        assert out["policies"]["oracle"]["cost_vs_oracle"] == 1.0
    else:
        assert "unserved" in result.stdout
    for a in args:
        if a.endswith(".png"):
            assert Path(a).read_bytes()[:4] == b"\x89PNG"


def test_documented_json_matches_the_real_output(data_dir: Path) -> None:
    """The JSON shown in the doc is what the command before it prints (hpa and oracle are deterministic)."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"```bash\n(pitboss simulate[^`]*?--json)\n```\s*```json\n(.*?)\n```", text, flags=re.S)
    assert match, "docs/simulate.md: a --json example followed by its output"
    args = shlex.split(match.group(1).replace("\\\n", " "))[1:]
    args = [in_repo(a) for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    real, shown = json.loads(result.stdout), json.loads(match.group(2))
    assert (real["series"], real["steps"], set(real["policies"])) == (
        shown["series"],
        shown["steps"],
        set(shown["policies"]),
    )
    for name, metrics in shown["policies"].items():
        assert real["policies"][name] == pytest.approx(metrics)
