"""Read the PromQL back out of dashboard JSON: every query, the metric names it uses, variables substituted.

``expressions(board)`` lists each panel target, each variable's
``label_values`` selector and each annotation as a ``Query`` (where it lives,
the expression); ``metric_names(expr)`` returns the metric names a PromQL
expression selects (strings, label matchers, ranges and grouping clauses
stripped; function and aggregation calls skipped); ``substitute(expr, values)``
replaces Grafana's variables as Grafana would before sending a query. Used by
the tests (every query is sent to a real Prometheus and must name only
exported metrics) and by ``pitboss dashboards build --check``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

KEYWORDS = frozenset({
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right",
    "inf", "nan", "atan2",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard and where it lives."""

    dashboard: str  # uid
    where: str  # "panel 3 'Title' A", "variable policy", "annotation Upcoming events"
    panel: str  # the panel's title ('' for variables and annotations)
    expr: str
    instant: bool = False


def expressions(board: Mapping[str, Any]) -> Iterator[Query]:
    """Every PromQL expression of ``board`` (Grafana dashboard JSON)."""
    uid = str(board.get("uid", ""))
    for panel in board.get("panels", []):
        for target in panel.get("targets") or []:
            yield Query(uid, f"panel {panel['id']} {panel['title']!r} {target['refId']}", panel["title"],
                        target["expr"], bool(target.get("instant")))
    for var in (board.get("templating") or {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = _LABEL_VALUES.match(query)
            if match is None:
                raise ValueError(f"{uid}: variable {var['name']}: expected label_values(selector, label), got {query}")
            yield Query(uid, f"variable {var['name']}", "", match.group(1), True)
    for ann in (board.get("annotations") or {}).get("list", []):
        if ann.get("expr"):
            yield Query(uid, f"annotation {ann['name']}", "", ann["expr"])


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (bare identifiers that are not calls, keywords or grouping labels)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name = match.group(1)
        rest = text[match.end():].lstrip()
        if name.lower() in KEYWORDS or rest.startswith("("):
            continue
        names.add(name)
    return names


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with ``$name`` and ``${name}`` replaced from ``values`` (KeyError naming an unknown variable)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"variable ${name} has no value (known: {', '.join(sorted(values))})")
        return values[name]

    return _VARIABLE.sub(one, expr)
