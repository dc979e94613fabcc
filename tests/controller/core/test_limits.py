"""Table tests of the scaling-limit functions decide() composes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.core.limits import (
    bounded_scale_down,
    clamp,
    replicas_for,
    scale_down_floor,
    stabilized,
)

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("demand", "capacity", "expected"),
    [
        (0.0, 50, 0),
        (1.0, 50, 1),
        (50.0, 50, 1),
        (50.0000000001, 50, 1),  # float noise does not buy a replica
        (50.1, 50, 2),
        (1840.0, 50, 37),
        (0.3 * 3, 0.3, 3),
    ],
)
def test_replicas_for(demand: float, capacity: float, expected: int) -> None:
    assert replicas_for(demand, capacity) == expected


def test_replicas_for_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="capacityPerReplica"):
        replicas_for(10, 0)
    with pytest.raises(ValueError, match="demand"):
        replicas_for(float("nan"), 10)


@pytest.mark.parametrize(
    ("replicas", "lo", "hi", "expected"),
    [(5, 1, 10, (5, False)), (0, 1, 10, (1, False)), (11, 1, 10, (10, True)), (10, 1, 10, (10, False))],
)
def test_clamp(replicas: int, lo: int, hi: int, expected: tuple[int, bool]) -> None:
    assert clamp(replicas, lo, hi) == expected


def test_clamp_rejects_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="maxReplicas"):
        clamp(3, 5, 2)


@pytest.mark.parametrize(
    ("recommendation", "history", "window_s", "expected"),
    [
        (4, [], 300, 4),
        (4, [(NOW - timedelta(seconds=60), 9)], 300, 9),  # inside the window: held at 9
        (4, [(NOW - timedelta(seconds=301), 9)], 300, 4),  # fell out of the window
        (12, [(NOW - timedelta(seconds=60), 9)], 300, 12),  # scale-up is never delayed
        (4, [(NOW - timedelta(seconds=60), 9)], 0, 4),  # no window
        (4, [(NOW - timedelta(seconds=200), 7), (NOW - timedelta(seconds=100), 6)], 300, 7),
    ],
)
def test_stabilized(recommendation: int, history: list[tuple[datetime, int]], window_s: int, expected: int) -> None:
    assert stabilized(recommendation, history, NOW, timedelta(seconds=window_s)) == expected


@pytest.mark.parametrize(
    ("current", "pct", "floor"),
    [(10, 50, 5), (9, 50, 5), (1, 50, 1), (1, 100, 0), (100, 10, 90), (7, 25, 6), (0, 50, 0)],
)
def test_scale_down_floor(current: int, pct: int, floor: int) -> None:
    assert scale_down_floor(current, pct) == floor


@pytest.mark.parametrize(
    ("current", "target", "pct", "expected"),
    [
        (10, 2, 50, (5, True)),
        (10, 6, 50, (6, False)),
        (10, 12, 50, (12, False)),
        (10, 0, 100, (0, False)),
    ],
)
def test_bounded_scale_down(current: int, target: int, pct: int, expected: tuple[int, bool]) -> None:
    assert bounded_scale_down(current, target, pct) == expected
