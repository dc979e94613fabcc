"""Every `pitboss simulate` example in docs/economics.md runs as documented (through CliRunner).

Paths under data/ point at the repository's traces; an example followed by
a `# error: ... (exit 2)` line must fail with exactly that one-line error.
The quoted Decision message is what decide() says for that situation.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.core.decide import decide
from controller.core.decision import ObservedState
from controller.core.policy import Policy
from forecasting.base import Forecast
from tests.conftest import REPO

DOC = REPO / "docs" / "economics.md"


def examples() -> list[tuple[str, str | None]]:
    text = DOC.read_text(encoding="utf-8")
    out: list[tuple[str, str | None]] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines = [ln.strip() for ln in block.replace("\\\n", " ").splitlines() if ln.strip()]
        for i, line in enumerate(lines):
            if line.startswith("pitboss simulate"):
                nxt = lines[i + 1] if i + 1 < len(lines) else ""
                out.append((line, nxt.removeprefix("# ").split("   (exit")[0].strip() if nxt.startswith("# error:")
                            else None))
    return out


def test_the_doc_has_examples() -> None:
    found = examples()
    assert len(found) >= 2 and any(error for _, error in found)


@pytest.mark.parametrize(("command", "error"), examples(), ids=lambda v: str(v)[:60] if v else "ok")
def test_documented_example(command: str, error: str | None) -> None:
    args = [a.replace("data/", f"{REPO}/data/", 1) if a.startswith("data/") else a for a in shlex.split(command)[1:]]
    result = CliRunner().invoke(app, args)
    if error is not None:
        assert result.exit_code == 2
        assert result.stderr.strip() == error
        return
    assert result.exit_code == 0, result.output
    words = " ".join(result.stdout.split())
    assert "newsvendor quantile 0.9 from costs" in words and "cost" in words


def test_the_quoted_message_is_decides() -> None:
    text = " ".join(re.search(r"```text\n(forecast q0\.973.*?)```", DOC.read_text(), flags=re.S).group(1).split())
    now = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    index = pd.date_range(now, periods=30, freq="1min")
    forecast = Forecast(index, np.full(30, 1500.0), {q: np.full(30, 1000 * (1 + q)) for q in (0.5, 0.9, 0.95, 0.99)})
    policy = Policy.model_validate({"capacityPerReplica": 50, "leadTime": "10m", "maxReplicas": 500,
                                    "costs": {"unservedRequest": 0.0002, "replicaHour": 1}})
    d = decide(policy, forecast, ObservedState(now, 10, 10, 400.0))
    assert d.message == text
