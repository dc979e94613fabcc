"""A focused parser for the Prometheus text exposition format (version 0.0.4).

Called by the scrape source (``controller.sources.scrape``) on every cycle for
every replica, and by the observe benchmark. Why our own parser instead of
``prometheus_client.parser``: the scrape is on the control loop's hot path and
we read only a handful of families (requests, the latency histogram, a few
gauges). prometheus-client's parser builds a ``Metric`` object per family and a
``Sample`` per line, validates types and unescapes every label through regular
expressions; this one skips ``#`` lines and every sample whose metric name is
not wanted *before* looking at its labels, and returns flat tuples. The
benchmark (``make bench-observe``) quotes the ratio against prometheus-client
on the same 10,000-series text, filtered and unfiltered. Label sets are
cached by their text (a replica serves the same series on every scrape), so a
steady-state scrape skips label parsing; the benchmark reports cold and warm.

Grammar handled: ``name{label="value",...} value [timestamp]``, escaped
``\\\\``, ``\\"`` and ``\\n`` in label values, a trailing comma in the label
set, ``+Inf``/``-Inf``/``NaN`` values, blank lines and comments. A malformed
sample line raises ``ValueError`` naming the line number and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import NamedTuple

Labels = tuple[tuple[str, str], ...]


class Sample(NamedTuple):
    """One exposition line: metric name, sorted label pairs, value."""

    name: str
    labels: Labels
    value: float


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*")
_PAIR = r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*'
_LABELS = re.compile(rf"(?:{_PAIR},)*(?:{_PAIR})?[ \t]*")  # strict, slow path only
_LABEL = re.compile(_PAIR)
_FAST_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*(?:\\.[^"\\]*)*)"')
_UNESCAPE = re.compile(r"\\(.)")
_CACHE_MAX = 100_000
_cache: dict[str, Labels] = {}


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), value)


def clear_cache() -> None:
    """Forget the label sets seen so far (the benchmark's cold runs; memory)."""
    _cache.clear()


def _labels(body: str, line_no: int, line: str) -> Labels:
    """Parse a label body. Label sets repeat on every scrape, so results are cached by body text."""
    cached = _cache.get(body)
    if cached is not None:
        return cached
    pairs = _FAST_PAIR.findall(body)
    # The fast pattern skips what it cannot read; accept its result only if it read every character
    # (k="v" pairs joined by ',' with an optional trailing ','), else take the strict, slower path.
    rebuilt = ",".join([f'{k}="{v}"' for k, v in pairs])
    if rebuilt != body and rebuilt + "," != body:
        if not _LABELS.fullmatch(body):
            raise ValueError(
                f"exposition line {line_no}: expected label=\"value\" pairs separated by ',' in {line[:80]!r}"
            )
        pairs = _LABEL.findall(body)
    if "\\" in body:
        pairs = [(k, _unescape(v)) for k, v in pairs]
    pairs.sort()
    labels = tuple(pairs)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[body] = labels
    return labels


def _base_name(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_created", "_total"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def iter_samples(text: str, families: Collection[str] | None = None) -> Iterator[Sample]:
    """Yield the samples of ``text``; only those of ``families`` when given.

    A family is matched by base name: ``casino_http_requests`` (or the full
    ``casino_http_requests_total``) selects ``casino_http_requests_total``;
    ``casino_http_request_duration_seconds`` selects its ``_bucket``, ``_count``
    and ``_sum`` samples.
    """
    wanted: set[str] | None = None
    if families is not None:
        wanted = set()
        for fam in families:
            wanted.add(fam)
            wanted.add(_base_name(fam))
    skipped: set[str] = set()  # names already known to be unwanted
    match = _LINE.fullmatch
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line or line[0] == "#":
            continue
        if wanted is not None:
            cut = line.find("{")
            if cut < 0:
                cut = line.find(" ")
            name = line[:cut] if cut > 0 else line
            if name in skipped:
                continue
            if name not in wanted and _base_name(name) not in wanted:
                skipped.add(name)
                continue
        m = match(line.strip(" \t\r")) if line[-1] in " \t\r" or line[0] in " \t" else match(line)
        if m is None:
            stripped = line.strip()
            if not stripped or stripped[0] == "#":
                continue
            if " " not in stripped and "{" not in stripped:
                raise ValueError(f"exposition line {line_no}: expected 'name value', got {line[:80]!r}")
            if "{" in stripped and "}" not in stripped:
                raise ValueError(f"exposition line {line_no}: unterminated label set in {line[:80]!r}")
            raise ValueError(f"exposition line {line_no}: expected a value (and optional timestamp), got {line[:80]!r}")
        name, body, raw, _ = m.groups()
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"exposition line {line_no}: value of {name!r} is not a number: {raw!r}") from None
        yield Sample(name, _labels(body, line_no, line) if body else (), value)


def parse(text: str, families: Collection[str] | None = None) -> list[Sample]:
    """All samples of ``text`` (of ``families`` when given), as a list."""
    return list(iter_samples(text, families))
