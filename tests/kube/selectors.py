"""Label and field selectors as the Kubernetes API server parses them (for the strict emulator).

Label selector grammar: comma-separated requirements ``k=v``, ``k==v``,
``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists), ``!k`` (does not
exist). Field selectors: ``metadata.name`` and ``metadata.namespace`` with
``=``, ``==`` or ``!=``. A malformed selector raises ValueError (the emulator
answers 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_SET = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*$")


def _split(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def parse_label_selector(selector: str) -> Callable[[dict[str, str]], bool]:
    """A predicate over a labels dict; ValueError on a malformed selector."""
    checks: list[Callable[[dict[str, str]], bool]] = []
    for part in _split(selector):
        if m := _SET.match(part):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif m := _EQ.match(part):
            key, op, value = m.groups()
            if op == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif m := _EXISTS.match(part):
            negate, key = m.group(1) == "!", m.group(2)
            checks.append(lambda labels, k=key, n=negate: (k in labels) != n)
        else:
            raise ValueError(f"labelSelector: cannot parse requirement {part.strip()!r}")
    return lambda labels: all(check(labels) for check in checks)


def field_selector_matches(selector: str, obj: dict[str, Any]) -> bool:
    """True when ``obj`` satisfies a metadata.name / metadata.namespace field selector."""
    meta = obj.get("metadata") or {}
    for part in _split(selector):
        m = _EQ.match(part)
        if not m:
            raise ValueError(f"fieldSelector: cannot parse requirement {part.strip()!r}")
        key, op, value = m.groups()
        if key not in ("metadata.name", "metadata.namespace"):
            raise ValueError(f"fieldSelector: field {key!r} is not supported")
        actual = meta.get(key.split(".", 1)[1])
        if (actual == value) == (op == "!="):
            return False
    return True
