"""controller/core reads no clock and does no I/O: a source scan backs the import-linter contract."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[3] / "controller" / "core"
FORBIDDEN_MODULES = {"time", "socket", "subprocess", "kubernetes", "httpx", "requests", "redis", "sqlalchemy"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "open"}


def _modules() -> list[Path]:
    return sorted(CORE.glob("*.py"))


def test_core_has_modules() -> None:
    assert {p.name for p in _modules()} >= {"decide.py", "limits.py", "policy.py", "decision.py"}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_no_clock_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name}: imports {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            assert module not in FORBIDDEN_MODULES, f"{path.name}: imports from {node.module}"
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno}: calls {name}()"


def test_scanner_catches_a_clock_read(tmp_path: Path) -> None:
    """The scan itself can fail: a module calling datetime.now() is caught."""
    tree = ast.parse("from datetime import datetime\nx = datetime.now()\n")
    calls = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert "now" in calls and "now" in FORBIDDEN_CALLS
