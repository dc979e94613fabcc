"""The cycle deadline's rule (``controller.cycle.deadline``): when a cycle may still fit a forecast.

Pure: every figure is passed in (seconds on any clock), so the rule is a table and ``CycleDeadline`` is
driven with made-up times.
"""

from __future__ import annotations

import pytest

from controller.cycle.deadline import CycleDeadline, Ewma, FitBudget, may_fit

LIMIT, FLOOR = 7.5, 0.75


@pytest.mark.parametrize(
    ("elapsed", "fitted", "fits", "fit_cost", "rest", "expected", "why"),
    [
        (0.0, 0.0, 0, 0.0, 0.0, True, "the first fit of a cycle always runs"),
        (9.0, 0.0, 0, 5.0, 9.0, True, "the first fit runs even past the limit"),
        (6.0, 0.5, 3, 0.2, 4.0, True, "under the floor: fits progress even when the rest alone overruns"),
        (1.0, 0.75, 5, 0.2, 6.0, True, "at the floor, elapsed + fit + rest = 7.2 <= 7.5"),
        (1.0, 0.75, 5, 0.2, 6.4, False, "at the floor, elapsed + fit + rest = 7.6 > 7.5"),
        (3.0, 2.0, 10, 0.2, 4.3, True, "exactly at the limit: runs"),
        (3.0, 2.0, 10, 0.25, 4.3, False, "the fit's expected cost tips it over"),
        (7.4, 2.0, 10, 0.0, 0.2, False, "the rest of the cycle tips it over"),
        (0.5, 0.3, 1, 3.0, 1.0, True, "a slow fit (3 s) still runs while under the floor"),
        (0.5, 1.0, 2, 3.0, 4.1, False, "above the floor, a slow fit that would overrun waits"),
    ],
)
def test_may_fit(elapsed: float, fitted: float, fits: int, fit_cost: float, rest: float, expected: bool,
                 why: str) -> None:
    got = may_fit(elapsed=elapsed, fitted=fitted, fits=fits, fit_cost=fit_cost, rest=rest, limit=LIMIT,
                  floor=FLOOR)
    assert got is expected, why


def test_ewma() -> None:
    e = Ewma(0.5)
    assert e.value is None and e.high is None
    e.add(2.0)  # RFC 6298: the first sample is the mean, half of it the deviation
    assert (e.value, e.deviation, e.high) == (2.0, 1.0, 4.0)
    e.add(4.0)
    assert (e.value, e.deviation, e.high) == (3.0, 1.5, 6.0)


def test_a_fit_is_planned_at_what_a_slow_one_costs() -> None:
    d = CycleDeadline(LIMIT)
    for seconds in (0.1, 0.1, 0.1, 0.5, 0.1, 0.5):  # fits that are now and then five times slower
        d.fitted_one(seconds)
    mean, high = d.fit_cost.value, d.fit_cost.high
    assert mean is not None and high is not None and mean < 0.3 < 0.5 < high, (mean, high)


def _cycle(deadline: CycleDeadline, policies: int, fit_s: float, other_s: float) -> tuple[int, float]:
    """One cycle on a made-up clock: every policy is due a fit of ``fit_s`` seconds and takes ``other_s``
    seconds of other work. Returns the fits that ran and the cycle's seconds."""
    start = now = 100.0
    fits = 0
    deadline.start(now, policies)
    for _ in range(policies):
        deadline.next_policy()
        if deadline.may_fit(now):
            now += fit_s
            deadline.fitted_one(fit_s)
            fits += 1
        now += other_s
    deadline.end(now)
    return fits, now - start


def test_a_cycle_fits_what_its_rest_leaves_room_for() -> None:
    d = CycleDeadline(LIMIT)
    assert d.floor == pytest.approx(0.75)
    # 1,000 policies, 3 ms of other work each (3 s), every one due a 0.2 s fit. The first cycle knows
    # nothing of its rest: it fits the floor's worth (0, 0.2, 0.4, 0.6 s fitted: 4 fits), then learns
    # the rest; the next ones fill what the 4.5 s left holds, and stay within the limit.
    cycles = [_cycle(d, 1000, 0.2, 0.003) for _ in range(3)]
    assert cycles[0][0] == 4, cycles
    assert all(20 <= f <= 23 and s <= LIMIT for f, s in cycles[1:]), cycles
    assert d.rest_per_policy.value == pytest.approx(0.003)
    assert d.fit_cost.value == pytest.approx(0.2)


def test_a_cycle_with_more_other_work_than_the_average_fits_less() -> None:
    d = CycleDeadline(LIMIT)
    for _ in range(3):
        _cycle(d, 1000, 0.2, 0.003)
    # Twice the other work (6 s, a step's first cycle writing every status): the cycle's own mean shows
    # it from its first policies, so it fits ~7, not the ~22 the average would allow (10.4 s).
    fits, seconds = _cycle(d, 1000, 0.2, 0.006)
    assert fits <= 8 and seconds <= LIMIT, (fits, seconds)


def test_the_floor_keeps_fits_going_when_the_rest_alone_overruns() -> None:
    d = CycleDeadline(LIMIT)
    # 10 ms of other work per policy: 10 s of rest, over the 7.5 s limit on its own. Fits still take the
    # floor's 0.75 s every cycle (4 fits of 0.2 s: the 4th starts at 0.6 s, under the floor).
    assert [_cycle(d, 1000, 0.2, 0.010)[0] for _ in range(3)] == [4, 4, 4]


def test_a_cycle_with_nothing_else_to_do_fits_up_to_the_limit() -> None:
    d = CycleDeadline(LIMIT)
    # The floor's worth, then up to the limit: 14 x 0.5 s = 7 s, the 15th planned at its mean plus two
    # (decayed) deviations would end past 7.5 s.
    assert [_cycle(d, 100, 0.5, 0.0)[0] for _ in range(2)] == [2, 14]


def test_the_fixed_budget_counts_fitting_only() -> None:
    b = FitBudget(1.0)
    b.start(0.0, 10)
    assert b.may_fit(50.0)  # the first always
    b.fitted_one(0.6)
    assert b.may_fit(99.0)  # elapsed time does not matter
    b.fitted_one(0.6)
    assert not b.may_fit(0.0)
    b.start(0.0, 10)
    assert b.may_fit(0.0)


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        CycleDeadline(0.0)
