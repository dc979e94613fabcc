"""The focused exposition parser: table-driven cases, bad lines, and agreement with prometheus-client."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.sources.exposition import Sample, parse

CASES = [
    ("plain", "up 1\n", [Sample("up", (), 1.0)]),
    ("labels sorted", 'a_total{z="1",b="2"} 3\n', [Sample("a_total", (("b", "2"), ("z", "1")), 3.0)]),
    ("timestamp ignored", "x 2 1700000000000\n", [Sample("x", (), 2.0)]),
    ("comments and blanks", "# HELP x h\n# TYPE x gauge\n\nx 4\n", [Sample("x", (), 4.0)]),
    ("inf and nan", 'h_bucket{le="+Inf"} +Inf\nn NaN\n', [Sample("h_bucket", (("le", "+Inf"),), math.inf),
                                                          Sample("n", (), math.nan)]),
    ("escapes", 'x{p="a\\"b\\\\c\\nd"} 1\n', [Sample("x", (("p", 'a"b\\c\nd'),), 1.0)]),
    ("trailing comma", 'x{a="1",} 1\n', [Sample("x", (("a", "1"),), 1.0)]),
    ("spaces in labels", 'x{a="1", b="two words"} 1\n', [Sample("x", (("a", "1"), ("b", "two words")), 1.0)]),
    ("empty label set", "x{} 5\n", [Sample("x", (), 5.0)]),
    ("crlf", "x 5\r\n", [Sample("x", (), 5.0)]),
    ("brace in value", 'x{a="}{"} 5\n', [Sample("x", (("a", "}{"),), 5.0)]),
]


def _same(a: list[Sample], b: list[Sample]) -> bool:
    return len(a) == len(b) and all(
        x.name == y.name and x.labels == y.labels
        and (x.value == y.value or (math.isnan(x.value) and math.isnan(y.value)))
        for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES])
def test_parse_cases(text: str, expected: list[Sample]) -> None:
    assert _same(parse(text), expected)


def test_family_filter_selects_suffixed_samples() -> None:
    text = ('casino_http_request_duration_seconds_bucket{le="0.25"} 3\n'
            "casino_http_request_duration_seconds_count 4\ncasino_http_request_duration_seconds_sum 1.5\n"
            'casino_http_requests_total{status="200"} 9\nother_metric{x="1"} 1\nbroken line without value here {\n')
    names = [s.name for s in parse(text, ["casino_http_request_duration_seconds", "casino_http_requests_total"])]
    assert names == ["casino_http_request_duration_seconds_bucket", "casino_http_request_duration_seconds_count",
                     "casino_http_request_duration_seconds_sum", "casino_http_requests_total"]


@pytest.mark.parametrize(("text", "message"), [
    ("novalue\n", "line 1: expected 'name value'"),
    ('x{a="1"}\n', "expected a value"),
    ("x abc\n", "not a number"),
    ('x{a=1} 2\n', 'expected label="value" pairs'),
    ('x{a="1" b="2"} 2\n', 'expected label="value" pairs'),
    ('x{a="1"\n', "unterminated label set"),
    ('ok 1\nx{a="1} 2\n', "line 2"),
    ("x 1 2 3\n", "expected a value"),
])
def test_bad_lines_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="exposition line") as info:
        parse(text)
    assert message in str(info.value)


def _exposition(rng: random.Random, n: int) -> str:
    lines = ["# HELP casino_http_requests_total Requests.", "# TYPE casino_http_requests_total counter"]
    for i in range(n):
        status = rng.choice(["200", "404", "503"])
        value = rng.choice([0.0, 1.0, 12345.0, 0.5, 1e21])
        lines.append(f'casino_http_requests_total{{route="/r/{i}",method="GET",status="{status}"}} {value!r}')
    lines.append("# TYPE g gauge")
    lines.append('g{path="a\\\\b",q="x\\"y"} -3.5')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_prometheus_client(seed: int) -> None:
    text = _exposition(random.Random(seed), 200)
    theirs = sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                    for fam in text_string_to_metric_families(text) for s in fam.samples)
    ours = sorted((s.name, s.labels, s.value) for s in parse(text))
    assert ours == theirs


def test_cache_does_not_change_results_or_hide_errors() -> None:
    text = 'x{b="2",a="1"} 1\ny{a="1",b="2"} 2\n'
    assert parse(text) == parse(text)
    for _ in range(2):
        with pytest.raises(ValueError, match="line 1"):
            parse('x{a="1" b="2"} 1\n')
