"""Durations parse the way every flag and spec writes them, and bad ones name the field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("90", 90),
     (45, 45), ("500ms", 0.5), ("1w", 604800), (timedelta(minutes=3), 180)],
)
def test_parse(text: str | int | timedelta, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "ten minutes", "10x", "-5m", "5m-", "m5", -3, True, None])
def test_bad_names_field(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^horizon: "):
        parse_duration(bad, field="horizon")  # type: ignore[arg-type]


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (600, "10m"), (5400, "1h30m"), (90061, "1d1h1m1s")])
def test_format_roundtrip(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    assert parse_duration(text).total_seconds() == seconds
