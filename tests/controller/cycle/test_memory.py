"""The per-policy memory: recommendation window (status-loaded and in-memory runs), forecast checks, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.cycle.memory import ForecastChecks, RecommendationWindow, ScaleFailures

T0 = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
WINDOW = timedelta(minutes=5)


def _status(*entries: tuple[int, int]) -> list[dict[str, object]]:
    return [{"time": (T0 + m * MIN).strftime("%Y-%m-%dT%H:%M:%SZ"), "replicas": r} for m, r in entries]


@pytest.mark.parametrize(("entries", "at_min", "expected"), [
    # a run begun before the window that still held at its start counts at the start
    ([(0, 8), (7, 4)], 9, [(4, 8), (7, 4)]),
    # one replaced before the window starts does not
    ([(0, 8), (3, 4)], 9, [(4, 4)]),
    # replaced exactly at the window's start: not held into it
    ([(0, 8), (4, 4)], 9, [(4, 4)]),
    # entries after now are ignored
    ([(0, 3), (12, 9)], 9, [(4, 3)]),
    ([], 9, []),
])
def test_a_window_loaded_from_status_sees_what_held_in_it(entries: list[tuple[int, int]], at_min: int,
                                                          expected: list[tuple[int, int]]) -> None:
    window = RecommendationWindow.load(_status(*entries))
    assert window.view(T0 + at_min * MIN, WINDOW) == tuple((T0 + m * MIN, r) for m, r in expected)


def test_an_in_memory_run_counts_until_the_last_cycle_that_recommended_it() -> None:
    # hourly cycles, a 5-minute window: the previous hour's recommendation is outside it
    window = RecommendationWindow()
    window.add(8, T0)
    assert window.view(T0 + timedelta(hours=1), WINDOW) == ()
    # minute cycles: the run recommended until a minute ago is seen at the window's start
    dense = RecommendationWindow()
    for minute in range(8):
        dense.add(8, T0 + minute * MIN)
    assert dense.view(T0 + 8 * MIN, WINDOW) == ((T0 + 3 * MIN, 8),)


def test_dump_and_load_round_trip_what_the_window_needs() -> None:
    window = RecommendationWindow.load(_status((0, 8), (3, 6)))
    window.add(6, T0 + 6 * MIN)  # same as the last: no new entry
    window.add(4, T0 + 10 * MIN)
    dumped = window.dump(T0 + 10 * MIN, WINDOW)
    assert dumped == _status((3, 6), (10, 4))  # from the last entry at or before the window's start
    assert RecommendationWindow.load(dumped).view(T0 + 10 * MIN, WINDOW) == window.view(T0 + 10 * MIN, WINDOW)


def test_forget_before_keeps_what_a_later_window_can_still_see() -> None:
    window = RecommendationWindow()
    for minute, replicas in [(0, 8), (1, 8), (2, 5), (9, 4)]:
        window.add(replicas, T0 + minute * MIN)
    window.forget_before(T0 + 9 * MIN, WINDOW)
    assert [(r.replicas, r.start) for r in window.runs] == [(4, T0 + 9 * MIN)]


def test_forecast_checks_are_one_per_step_the_latest_reading_winning() -> None:
    checks = ForecastChecks(steps=3)
    for second, actual in [(0, 1.0), (15, 2.0), (45, 3.0), (60, 4.0), (130, 5.0), (200, 6.0)]:
        checks.check(T0 + timedelta(seconds=second), MIN, actual, 10.0)
    assert checks.pairs() == [(4.0, 10.0), (5.0, 10.0), (6.0, 10.0)]  # steps 1, 2, 3; step 0 (3.0) dropped


def test_scale_failures_count_consecutive_failures_only() -> None:
    failures = ScaleFailures()
    failures.record("refused")
    failures.record("timeout")
    assert (failures.count, failures.last_error) == (2, "timeout")
    failures.record(None)
    assert (failures.count, failures.last_error) == (0, None)


HIT, MISS = (10.0, 20.0), (30.0, 20.0)  # (actual, upper quantile)


@pytest.mark.parametrize(("readings", "dumped"), [
    ([HIT, HIT, HIT], None),  # the forecast holds: nothing to write, status untouched
    ([HIT, MISS], [MISS]),
    ([MISS, MISS, HIT], [MISS, MISS, HIT]),  # the latest step's hit may still be replaced by a miss
    ([MISS, HIT, HIT], None),
    ([MISS, (None, 20.0)], [MISS, (None, 20.0)]),
    ([], None),
])
def test_forecast_checks_dump_only_what_forecast_miss_can_still_count(
        readings: list[tuple[float | None, float | None]],
        dumped: list[tuple[float | None, float | None]] | None) -> None:
    checks = ForecastChecks(steps=3)
    for i, (actual, upper) in enumerate(readings):
        checks.check(T0 + i * MIN, MIN, actual, upper)
    items = checks.dump(MIN)
    assert (None if items is None else [(i.get("actual"), i.get("upper")) for i in items]) == dumped
    loaded = ForecastChecks.load(items, 3, MIN)
    assert loaded.pairs() == (dumped or [])
    # one more miss in the latest step: the loaded checks count it as the ones kept in memory do
    late = T0 + (len(readings) - 1) * MIN + timedelta(seconds=30)
    checks.check(late, MIN, *MISS)
    loaded.check(late, MIN, *MISS)
    assert _trailing_misses(loaded.pairs()) == _trailing_misses(checks.pairs())


def _trailing_misses(pairs: list[tuple[float | None, float | None]]) -> int:
    """What ForecastMiss reads: how many steps in a row, the latest last, missed."""
    n = 0
    for actual, upper in reversed(pairs):
        if actual is None or upper is None or not actual > upper:
            break
        n += 1
    return n


def test_policy_memory_round_trips_through_status() -> None:
    from controller.core.policy import Policy
    from controller.cycle.memory import PolicyMemory

    policy = Policy(capacity_per_replica=10, database_replicas={"capacity_per_replica": 50})
    memory = PolicyMemory({"namespace": "ns", "policy": "p"}, checks=ForecastChecks(steps=3))
    memory.recommendations.add(4, T0)
    memory.last_scale_time = T0
    memory.last_scale_up_time = T0 - MIN
    memory.scale.record("scale: 503")
    memory.checks.check(T0, MIN, *MISS)
    memory.database.recommendations.add(2, T0)
    memory.database.scale_ups = [(T0, 1)]
    memory.database.current = 2
    status = {k: v for k, v in memory.dump(policy, T0 + MIN, MIN).items() if v is not None}
    loaded = PolicyMemory.load(memory.scope, status, steps=3, step=MIN)
    assert loaded.dump(policy, T0 + MIN, MIN) == memory.dump(policy, T0 + MIN, MIN)
    assert (loaded.scale.count, loaded.scale.last_error, loaded.last_scale_time) == (1, "scale: 503", T0)
    assert loaded.last_scale_up_time == T0 - MIN
    assert loaded.checks.pairs() == [MISS] and loaded.database.current == 2
    assert PolicyMemory.load(memory.scope, None, steps=3, step=MIN).dump(policy, T0, MIN) == {
        "recommendations": [], "lastScaleTime": None, "lastScaleUpTime": None, "scaleFailures": None,
        "forecastChecks": None,
        "databaseRecommendations": [], "databaseScaleUps": None, "databaseCurrentReplicas": None}
