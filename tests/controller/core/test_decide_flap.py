"""The forecast guard on scale-down (issue 15): no scale-down the forecast takes back within its dwell.

A table of whole situations, like ``test_decide``: the margin band around a
replica boundary, a rise inside the dwell horizon (lead + sync +
stabilization window) that the sizing window cannot see, a forecast that
stops short of the horizon while still rising, and the cases that must
still scale down. The last test replays the forecasts a ``make demo`` run
decided with on the tournament's plateau (recorded from the loop's feed)
and checks the replica count never goes down and up again: before the
guard, those forecasts took it 4 -> 3 -> 4. The dwell-after-a-scale-up cases
and the last test replay a run whose forecast covered the whole dwell, where
the forecast-led path flapped 4 -> 3 -> 4 before that rule (docs/demo.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from controller.core.decide import decide
from controller.core.decision import ObservedState
from controller.core.policy import Policy
from forecasting.base import Forecast

NOW = datetime(2026, 2, 2, 12, 49, tzinfo=UTC)
# The demo's policy (docs/demo.md): 15 req/s per replica, at most 4, lead 6m, a 1-minute cycle, a 10-minute window.
DEMO = {"capacityPerReplica": 15, "minReplicas": 1, "maxReplicas": 4, "leadTime": "6m", "syncPeriod": "1m",
        "scaleDown": {"stabilizationWindow": "10m"}}


def minute_forecast(p95: list[float], start: datetime = NOW) -> Forecast:
    """One point a minute from ``start`` whose p95 is ``p95`` (p50 15 % below, p99 10 % above)."""
    index = pd.date_range(start, periods=len(p95), freq="60s")
    v = np.asarray(p95, dtype=float)
    return Forecast(index=index, mean=v * 0.85, quantiles={0.5: v * 0.85, 0.9: v * 0.95, 0.95: v, 0.99: v * 1.1},
                    model="test")


@dataclass
class Case:
    name: str
    p95: list[float]
    observed: float
    current: int
    expected: int
    reason: str
    recommendations: list[tuple[int, int]] = field(default_factory=list)  # (minutes ago, replicas)
    policy: dict[str, Any] = field(default_factory=dict)
    message_has: tuple[str, ...] = ()
    last_up: int | None = None  # minutes since the last scale-up (None: unknown)


THREE_FOR_TEN = [(m, 3) for m in range(1, 11)]  # the backward window would let 4 -> 3
FULL = 18  # points: the forecast covers the dwell horizon, 6m + 1m + 10m

CASES = [
    Case("inside the margin: 3 replicas would keep less than a quarter replica spare, hold 4",
         [43.0] * FULL, observed=40.0, current=4, expected=4, reason="ScaleDownForecastHold",
         recommendations=THREE_FOR_TEN,
         message_has=("p95 peak over the next 17m is 43 req/s", "3 replicas keep scaleDown.margin 0.25 of a replica"
                      " spare only up to 41.2 req/s, so the scale-down stops at 4", "holding 4")),
    Case("below the margin: scale down", [41.0] * FULL, observed=38.0, current=4, expected=3, reason="ScaleDown",
         recommendations=THREE_FOR_TEN),
    Case("margin 0 restores the plain boundary", [44.9] * FULL, observed=40.0, current=4, expected=3,
         reason="ScaleDown", recommendations=THREE_FOR_TEN,
         policy={"scaleDown": {"stabilizationWindow": "10m", "margin": 0}}),
    Case("a rise past lead + sync but inside the window: the replica would be wanted back, hold",
         [25.0] * 9 + [50.0] * 9, observed=25.0, current=4, expected=4, reason="ScaleDownForecastHold",
         recommendations=THREE_FOR_TEN, message_has=("p95 peak over the next 17m is 50 req/s at 12:58",)),
    Case("a rise within the dwell to what 3 serve: down to 3, not to the 2 the sizing window needs",
         [25.0] * 9 + [40.0] * 9, observed=25.0, current=4, expected=3, reason="ScaleDownStabilized",
         recommendations=[(m, 2) for m in range(1, 11)],
         policy={"scaleDown": {"stabilizationWindow": "10m", "maxStepPercent": 100}}),
    Case("a forecast stopping short of the horizon, still rising: carried on its trend, hold",
         [39.6, 39.7, 40.0, 39.9, 40.2, 40.4, 40.7, 40.4, 40.6, 40.8], observed=33.0, current=4, expected=4,
         reason="ScaleDownForecastHold", recommendations=THREE_FOR_TEN,
         message_has=("(the forecast stops at 12:58) is 40.8 req/s", "carried on its trend", "to 13:06")),
    Case("a forecast stopping short of the horizon, falling: scales down (after the window)",
         [26.0, 25.0, 24.0, 23.0, 22.0, 21.0, 20.0, 19.0, 18.0, 17.0], observed=26.0, current=4, expected=2,
         reason="ScaleDown", recommendations=[(m, 2) for m in range(1, 11)]),
    Case("forecast-led past the backward window needs the margin too",
         [43.0] * FULL, observed=40.0, current=4, expected=4, reason="ScaleDownStabilized",
         recommendations=[(5, 4), *[(m, 3) for m in range(1, 5)]]),
    Case("forecast-led with room below the margin goes past the backward window",
         [36.0] * FULL, observed=35.0, current=4, expected=3, reason="ScaleDownForecast",
         recommendations=[(5, 4), *[(m, 3) for m in range(1, 5)]],
         message_has=("needs 3 with scaleDown.margin 0.25: not holding the last 10m's 4",)),
    Case("forecast-led within the dwell after the last scale-up: the backward window rules",
         [36.0] * FULL, observed=35.0, current=4, expected=4, reason="ScaleDownStabilized",
         recommendations=[(5, 4), *[(m, 3) for m in range(1, 5)]], last_up=8,
         message_has=("needs 3 with scaleDown.margin 0.25, but the last scale-up was 8m ago (12:41), within the dwell"
                      " 17m (lead + sync + stabilization window): holding the last 10m's 4", "holding 4")),
    Case("forecast-led once the dwell since the last scale-up has passed", [36.0] * FULL, observed=35.0, current=4,
         expected=3, reason="ScaleDownForecast", recommendations=[(5, 4), *[(m, 3) for m in range(1, 5)]], last_up=17),
    Case("a scale-up long past the dwell does not hold a later forecast-led step", [21.0] * FULL,
         observed=20.0, current=3, expected=2, reason="ScaleDownForecast",
         recommendations=[(3, 3), *[(m, 2) for m in range(1, 3)]], last_up=30),
    Case("after a forecast-led scale-down the window's higher counts never scale back up (the HPA's min with current)",
         [40.0] * FULL, observed=38.0, current=3, expected=3, reason="Hold",
         recommendations=[(2, 4), (1, 3)]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_scale_down_guard(case: Case) -> None:
    policy = Policy.model_validate({**DEMO, **case.policy})
    state = ObservedState(now=NOW, current_replicas=case.current, ready_replicas=case.current,
                          observed_demand=case.observed,
                          recommendations=tuple((NOW - timedelta(minutes=m), r) for m, r in case.recommendations),
                          last_scale_up_time=None if case.last_up is None else NOW - timedelta(minutes=case.last_up))
    decision = decide(policy, minute_forecast(case.p95), state)
    assert (decision.desired_replicas, decision.reason) == (case.expected, case.reason), decision.message
    for text in case.message_has:
        assert text in decision.message, decision.message


# A `make demo` run, 12:36 .. 13:11 (the tournament: 12:36 .. 13:12), one row a cycle: the observed req/s and
# the p95 of the forecast the loop decided with (its ten points from now; recorded from its StepFeed).
DEMO_RUN = [
    (10.5, [30.1, 30.2, 30.4, 44.0, 44.2, 45.5, 45.8, 49.7, 50.0, 49.5]),  # 12:36
    (11.9, [29.9, 30.0, 43.6, 43.6, 44.7, 45.0, 49.2, 49.1, 48.6, 48.8]),  # 12:37
    (13.0, [29.8, 43.0, 43.3, 44.0, 44.4, 48.4, 48.7, 47.9, 48.1, 48.4]),  # 12:38
    (15.0, [42.8, 42.9, 43.9, 43.9, 48.0, 48.3, 47.8, 47.7, 48.0, 48.2]),  # 12:39
    (23.0, [40.0, 39.7, 40.1, 42.9, 43.3, 42.7, 43.1, 43.0, 43.3, 43.5]),  # 12:40
    (24.9, [37.8, 38.0, 40.8, 40.8, 40.3, 40.6, 41.0, 40.9, 41.2, 41.5]),  # 12:41
    (25.5, [33.6, 35.2, 35.7, 34.7, 35.1, 35.5, 35.8, 35.8, 36.1, 36.4]),  # 12:42
    (28.0, [34.8, 35.1, 34.5, 34.6, 34.9, 35.3, 35.6, 35.6, 35.9, 36.2]),  # 12:43
    (28.0, [34.5, 33.5, 33.9, 34.0, 34.4, 34.7, 35.1, 35.0, 35.3, 35.6]),  # 12:44
    (29.9, [34.0, 34.1, 34.5, 34.5, 34.8, 35.1, 35.5, 35.4, 35.7, 36.0]),  # 12:45
    (35.9, [36.6, 36.7, 37.1, 37.1, 37.4, 37.6, 37.9, 37.7, 38.0, 38.3]),  # 12:46
    (35.6, [38.3, 38.4, 38.8, 38.7, 39.0, 39.3, 39.5, 39.3, 39.5, 39.8]),  # 12:47
    (34.6, [39.3, 39.3, 39.7, 39.6, 39.9, 40.1, 40.4, 40.1, 40.3, 40.5]),  # 12:48
    (33.5, [39.6, 39.7, 40.0, 39.9, 40.2, 40.4, 40.7, 40.4, 40.6, 40.8]),  # 12:49
    (37.8, [41.1, 41.1, 41.4, 41.3, 41.5, 41.7, 42.0, 41.7, 41.9, 42.0]),  # 12:50
    (38.0, [42.2, 42.2, 42.5, 42.3, 42.5, 42.8, 42.9, 42.7, 42.8, 43.2]),  # 12:51
    (37.6, [42.9, 42.9, 43.2, 43.0, 43.2, 43.4, 43.6, 43.3, 43.7, 43.8]),  # 12:52
    (38.0, [43.6, 43.5, 43.8, 43.6, 43.8, 44.0, 44.2, 44.1, 44.2, 44.4]),  # 12:53
    (39.0, [44.3, 44.3, 44.5, 44.3, 44.5, 44.7, 45.1, 44.7, 44.9, 45.0]),  # 12:54
    (38.6, [44.8, 44.7, 45.0, 44.7, 44.9, 45.4, 45.5, 45.1, 45.3, 45.4]),  # 12:55
    (36.9, [44.7, 44.6, 44.8, 44.6, 45.1, 45.3, 45.4, 45.0, 45.2, 45.3]),  # 12:56
    (37.2, [44.7, 44.6, 44.8, 44.9, 45.1, 45.3, 45.4, 45.0, 45.2, 45.3]),  # 12:57
    (36.8, [44.6, 44.5, 45.0, 44.8, 45.0, 45.2, 45.3, 45.0, 45.1, 45.2]),  # 12:58
    (35.0, [43.9, 44.2, 44.5, 44.2, 44.5, 44.6, 44.8, 44.5, 44.6, 44.7]),  # 12:59
    (36.6, [44.2, 44.2, 44.5, 44.3, 44.5, 44.7, 44.8, 44.5, 44.6, 44.8]),  # 13:00
    (38.9, [44.9, 44.8, 45.1, 44.8, 45.0, 45.2, 45.4, 45.0, 45.2, 45.3]),  # 13:01
    (37.0, [44.8, 44.8, 45.0, 44.8, 45.0, 45.2, 45.4, 45.0, 45.1, 45.3]),  # 13:02
    (41.7, [46.1, 46.0, 46.2, 45.9, 46.1, 46.3, 46.4, 46.0, 46.1, 39.1]),  # 13:03
    (41.2, [46.8, 46.7, 46.9, 46.6, 46.8, 46.9, 47.1, 46.6, 39.5, 39.5]),  # 13:04
    (37.7, [46.5, 46.4, 46.6, 46.3, 46.5, 46.6, 46.8, 39.3, 39.3, 39.3]),  # 13:05
    (40.5, [47.0, 46.9, 47.1, 46.8, 47.0, 47.1, 39.8, 39.6, 39.6, 39.6]),  # 13:06
    (41.5, [47.6, 47.5, 47.7, 47.4, 47.5, 40.1, 40.2, 39.9, 40.0, 40.0]),  # 13:07
    (39.0, [47.4, 47.3, 47.5, 47.2, 40.0, 40.0, 40.1, 39.8, 39.9, 22.9]),  # 13:08
    (39.0, [47.3, 47.2, 47.4, 39.8, 39.9, 39.9, 40.0, 39.8, 22.8, 22.8]),  # 13:09
    (37.5, [46.8, 46.7, 39.6, 39.5, 39.6, 39.6, 39.7, 22.6, 22.6, 22.7]),  # 13:10
    (43.6, [48.0, 40.5, 40.5, 40.3, 40.4, 40.4, 23.2, 23.0, 23.0, 23.0]),  # 13:11
]


def test_demo_plateau_has_no_flap() -> None:
    """Replayed through decide with the demo's policy from 4 replicas, the count never goes down and back up."""
    policy = Policy.model_validate(DEMO)
    start = datetime(2026, 2, 2, 12, 36, tzinfo=UTC)
    current, recs, counts = 4, [(start - timedelta(minutes=3), 4)], []
    for i, (observed, p95) in enumerate(DEMO_RUN):
        now = start + timedelta(minutes=i)
        state = ObservedState(now=now, current_replicas=current, ready_replicas=current, observed_demand=observed,
                              recommendations=tuple(recs))
        decision = decide(policy, minute_forecast(p95, start=now), state)
        assert decision.recommended_replicas is not None
        recs.append((now, decision.recommended_replicas))
        current = decision.desired_replicas
        counts.append(current)
    assert counts == [4] * len(DEMO_RUN), counts


# A `make demo` run whose forecast covered the whole dwell (the loop's horizon lead + sync + window + 3 steps; lead
# 8m after a slow start-up, so the dwell is 19m), 12:36 .. 13:20, one row a cycle: the observed req/s and the first
# 20 points of the p95 the loop decided with (recorded from its decide calls). The tournament's demand ramps up
# over its first ten minutes; the calendar model, updated with the ramp, pulled the plateau down to 35-38 req/s
# for ten minutes and then back to 45. Before the dwell since the last scale-up (12:34), the forecast-led path took
# it 4 -> 3 at 12:42 and 3 -> 4 at 12:55.
DEMO_COVERING_RUN = [
    (10.0, [30.0, 30.1, 30.3, 43.8, 44.0, 45.2, 45.5, 49.4, 49.6, 49.1,  # 12:36
            49.4, 49.6, 49.8, 50.0, 50.2, 50.0, 50.2, 50.4, 50.5, 50.7]),
    (10.5, [29.8, 29.9, 43.2, 43.3, 44.2, 44.5, 48.6, 48.5, 48.0, 48.2,  # 12:37
            48.5, 48.7, 48.9, 49.1, 49.3, 49.1, 49.3, 49.5, 49.6, 49.8]),
    (12.5, [29.6, 42.6, 42.9, 43.5, 43.8, 47.8, 48.1, 47.2, 47.5, 47.7,  # 12:38
            47.9, 48.2, 48.4, 48.6, 48.8, 48.6, 48.8, 49.0, 49.1, 49.3]),
    (17.0, [42.6, 42.8, 43.6, 43.7, 47.6, 47.9, 47.4, 47.4, 47.6, 47.8,  # 12:39
            48.1, 48.3, 48.5, 48.7, 48.9, 48.8, 48.9, 49.1, 49.2, 49.4]),
    (22.7, [39.7, 39.4, 39.8, 42.5, 42.9, 42.3, 42.6, 42.6, 42.8, 43.1,  # 12:40
            43.4, 43.6, 43.8, 44.0, 44.2, 44.1, 44.3, 44.5, 44.7, 44.8]),
    (24.0, [37.2, 37.4, 40.0, 40.1, 39.6, 39.9, 40.2, 40.2, 40.5, 40.8,  # 12:41
            41.0, 41.2, 41.5, 41.7, 41.9, 41.8, 42.0, 42.2, 42.4, 42.8]),
    (26.8, [34.3, 36.0, 36.4, 35.5, 35.9, 36.2, 36.6, 36.5, 36.8, 37.1,  # 12:42
            37.4, 37.6, 37.9, 38.1, 38.3, 38.2, 38.4, 38.6, 39.0, 39.2]),
    (26.5, [34.5, 34.7, 34.1, 34.2, 34.6, 35.0, 35.3, 35.3, 35.6, 35.9,  # 12:43
            36.1, 36.4, 36.6, 36.9, 37.1, 37.0, 37.2, 37.6, 37.8, 38.0]),
    (26.8, [33.8, 32.8, 33.1, 33.2, 33.6, 34.0, 34.3, 34.2, 34.5, 34.8,  # 12:44
            35.1, 35.4, 35.6, 35.8, 36.0, 36.0, 36.4, 36.6, 36.7, 36.9]),
    (28.9, [33.1, 33.3, 33.6, 33.6, 34.0, 34.2, 34.6, 34.5, 34.8, 35.1,  # 12:45
            35.4, 35.6, 35.9, 36.1, 36.3, 36.4, 36.6, 36.8, 37.0, 37.2]),
    (35.0, [35.7, 35.8, 36.2, 36.1, 36.5, 36.7, 37.0, 36.9, 37.1, 37.4,  # 12:46
            37.7, 37.9, 38.1, 38.4, 38.8, 38.7, 38.9, 39.0, 39.2, 39.4]),
    (34.5, [37.3, 37.4, 37.8, 37.7, 38.0, 38.3, 38.5, 38.3, 38.5, 38.8,  # 12:47
            39.0, 39.3, 39.5, 40.0, 40.2, 40.0, 40.2, 40.4, 40.5, 40.7]),
    (34.6, [38.5, 38.6, 38.9, 38.8, 39.1, 39.4, 39.6, 39.4, 39.6, 39.8,  # 12:48
            40.0, 40.2, 40.7, 40.9, 41.1, 40.9, 41.1, 41.2, 41.4, 41.5]),
    (32.0, [38.6, 38.7, 39.0, 38.9, 39.2, 39.4, 39.7, 39.5, 39.7, 39.8,  # 12:49
            40.0, 40.5, 40.7, 40.9, 41.1, 40.9, 41.1, 41.2, 41.4, 41.5]),
    (35.5, [39.7, 39.7, 40.0, 39.9, 40.2, 40.4, 40.6, 40.4, 40.6, 40.7,  # 12:50
            41.2, 41.4, 41.5, 41.7, 41.9, 41.7, 41.9, 42.0, 42.1, 42.3]),
    (38.0, [41.1, 41.1, 41.4, 41.2, 41.5, 41.7, 41.9, 41.6, 41.8, 42.2,  # 12:51
            42.3, 42.5, 42.7, 42.8, 43.0, 42.8, 42.9, 43.0, 43.2, 43.3]),
    (36.8, [41.9, 41.9, 42.1, 42.0, 42.2, 42.4, 42.6, 42.3, 42.7, 42.8,  # 12:52
            43.0, 43.1, 43.3, 43.4, 43.6, 43.3, 43.4, 43.6, 43.7, 43.8]),
    (37.7, [42.7, 42.7, 42.9, 42.7, 42.9, 43.1, 43.3, 43.2, 43.4, 43.5,  # 12:53
            43.6, 43.7, 43.9, 44.0, 44.2, 43.9, 44.0, 44.1, 44.2, 37.6]),
    (39.0, [43.6, 43.6, 43.8, 43.6, 43.8, 44.0, 44.4, 44.0, 44.1, 44.3,  # 12:54
            44.4, 44.5, 44.6, 44.7, 44.9, 44.5, 44.7, 44.8, 38.0, 38.0]),
    (39.6, [44.5, 44.5, 44.7, 44.4, 44.6, 45.0, 45.2, 44.8, 44.9, 45.0,  # 12:55
            45.1, 45.1, 45.3, 45.4, 45.5, 45.2, 45.3, 38.4, 38.4, 38.4]),
    (37.6, [44.7, 44.6, 44.8, 44.5, 45.0, 45.1, 45.3, 44.9, 45.0, 45.1,  # 12:56
            45.2, 45.2, 45.4, 45.5, 45.6, 45.3, 38.4, 38.4, 38.5, 38.5]),
    (38.0, [44.9, 44.8, 45.0, 45.0, 45.2, 45.3, 45.5, 45.0, 45.2, 45.2,  # 12:57
            45.3, 45.4, 45.5, 45.6, 45.8, 38.5, 38.5, 38.5, 38.6, 38.6]),
    (37.0, [44.7, 44.6, 45.1, 44.9, 45.0, 45.2, 45.3, 45.0, 45.1, 45.2,  # 12:58
            45.2, 45.3, 45.4, 45.5, 38.6, 38.5, 38.5, 38.5, 38.5, 22.3]),
    (33.0, [43.4, 43.7, 43.9, 43.7, 43.9, 44.1, 44.3, 43.9, 44.1, 44.2,  # 12:59
            44.3, 44.4, 44.5, 38.0, 38.0, 37.9, 37.9, 38.0, 22.0, 22.0]),
    (35.0, [43.4, 43.4, 43.6, 43.4, 43.6, 43.8, 44.0, 43.7, 43.8, 44.0,  # 13:00
            44.1, 44.2, 37.8, 37.8, 37.9, 37.7, 37.8, 21.9, 21.9, 21.9]),
    (39.9, [44.5, 44.4, 44.7, 44.4, 44.6, 44.8, 45.0, 44.6, 44.7, 44.8,  # 13:01
            44.9, 38.3, 38.4, 38.4, 38.4, 38.3, 22.1, 22.1, 22.2, 22.2]),
    (39.0, [45.1, 45.0, 45.2, 45.0, 45.1, 45.3, 45.5, 45.1, 45.2, 45.3,  # 13:02
            38.6, 38.6, 38.7, 38.7, 38.7, 22.2, 22.3, 22.3, 22.3, 15.8]),
    (40.0, [45.8, 45.7, 45.9, 45.6, 45.8, 45.9, 46.0, 45.6, 45.7, 39.0,  # 13:03
            39.0, 39.0, 39.0, 39.0, 22.6, 22.4, 22.4, 22.4, 15.9, 15.9]),
    (41.7, [46.8, 46.6, 46.8, 46.5, 46.6, 46.8, 46.9, 46.5, 39.5, 39.5,  # 13:04
            39.5, 39.5, 39.5, 22.8, 22.8, 22.6, 22.6, 16.1, 16.1, 16.1]),
    (39.4, [46.9, 46.8, 47.0, 46.6, 46.8, 46.9, 47.0, 39.6, 39.6, 39.6,  # 13:05
            39.6, 39.6, 22.8, 22.8, 22.8, 22.7, 16.1, 16.1, 16.1, 16.1]),
    (42.9, [47.9, 47.7, 47.9, 47.6, 47.7, 47.8, 40.4, 40.2, 40.2, 40.1,  # 13:06
            40.1, 23.1, 23.1, 23.1, 23.1, 16.2, 16.2, 16.2, 16.2, 16.2]),
    (42.1, [48.5, 48.3, 48.4, 48.1, 48.2, 40.7, 40.7, 40.5, 40.5, 40.5,  # 13:07
            23.2, 23.2, 23.2, 23.2, 16.4, 16.3, 16.3, 16.3, 16.3, 16.3]),
    (37.7, [47.7, 47.5, 47.7, 47.4, 40.2, 40.2, 40.3, 40.0, 40.0, 23.0,  # 13:08
            23.0, 23.0, 23.0, 16.3, 16.3, 16.2, 16.2, 16.2, 16.2, 16.2]),
    (38.0, [47.2, 47.0, 47.2, 39.9, 39.9, 39.9, 40.0, 39.7, 22.8, 22.9,  # 13:09
            22.9, 22.9, 16.2, 16.2, 16.2, 16.1, 16.1, 16.1, 16.1, 16.1]),
    (36.9, [46.5, 46.4, 39.5, 39.4, 39.5, 39.5, 39.5, 22.6, 22.6, 22.7,  # 13:10
            22.7, 16.1, 16.1, 16.1, 16.1, 16.0, 16.0, 16.0, 16.0, 16.1]),
    (43.4, [47.7, 40.4, 40.4, 40.2, 40.3, 40.3, 23.2, 23.0, 23.0, 23.0,  # 13:11
            16.3, 16.3, 16.3, 16.3, 16.3, 16.2, 16.2, 16.2, 16.2, 16.2]),
    (41.0, [40.7, 40.6, 40.7, 40.5, 40.5, 23.2, 23.3, 23.1, 23.1, 16.3,  # 13:12
            16.3, 16.3, 16.4, 16.4, 16.4, 16.2, 16.2, 16.2, 16.2, 16.2]),
    (37.8, [41.2, 41.1, 41.1, 40.9, 23.5, 23.5, 23.5, 23.3, 16.5, 16.5,  # 13:13
            16.5, 16.5, 16.5, 16.5, 16.5, 16.4, 16.4, 16.4, 16.4, 16.4]),
    (36.8, [41.7, 41.6, 41.5, 23.7, 23.7, 23.7, 23.7, 16.6, 16.6, 16.6,  # 13:14
            16.6, 16.6, 16.6, 16.6, 16.6, 16.5, 16.5, 16.5, 16.5, 16.4]),
    (34.5, [42.0, 41.9, 24.1, 23.9, 23.9, 23.9, 16.9, 16.8, 16.7, 16.7,  # 13:15
            16.7, 16.7, 16.7, 16.7, 16.7, 16.6, 16.6, 16.5, 16.5, 16.5]),
    (31.1, [42.0, 24.1, 24.1, 23.9, 23.9, 16.9, 16.9, 16.8, 16.8, 16.8,  # 13:16
            16.7, 16.7, 16.7, 16.7, 16.7, 16.6, 16.6, 16.6, 16.5, 16.5]),
    (30.0, [24.1, 24.0, 24.0, 23.9, 16.9, 16.9, 16.9, 16.7, 16.7, 16.7,  # 13:17
            16.7, 16.7, 16.7, 16.7, 16.7, 16.6, 16.6, 16.5, 16.5, 16.5]),
    (26.0, [25.1, 25.0, 24.9, 17.5, 17.5, 17.5, 17.5, 17.3, 17.2, 17.2,  # 13:18
            17.2, 17.2, 17.1, 17.1, 17.1, 16.9, 16.9, 16.9, 16.9, 16.8]),
    (22.0, [25.5, 25.3, 17.9, 17.8, 17.7, 17.7, 17.7, 17.5, 17.4, 17.4,  # 13:19
            17.4, 17.3, 17.3, 17.2, 17.2, 17.1, 17.0, 17.0, 17.0, 16.9]),
    (23.0, [25.9, 18.2, 18.2, 18.0, 18.0, 17.9, 17.9, 17.7, 17.6, 17.6,  # 13:20
            17.6, 17.5, 17.5, 17.4, 17.4, 17.2, 17.2, 17.1, 17.1, 15.2]),
]


def test_demo_with_a_dwell_covering_forecast_has_no_flap() -> None:
    """Replayed as the cycle runs it (last scale-up remembered), the count holds 4 through the plateau and the
    forecast still cuts the window short after the event (it ended at 13:12)."""
    policy = Policy.model_validate({**DEMO, "leadTime": "8m"})
    start = datetime(2026, 2, 2, 12, 36, tzinfo=UTC)
    up = start - timedelta(minutes=2)
    current, recs, moves = 4, [(up, 4)], []
    for i, (observed, p95) in enumerate(DEMO_COVERING_RUN):
        now = start + timedelta(minutes=i)
        state = ObservedState(now=now, current_replicas=current, ready_replicas=current, observed_demand=observed,
                              recommendations=tuple(recs), last_scale_up_time=up)
        decision = decide(policy, minute_forecast(p95, start=now), state)
        assert decision.recommended_replicas is not None
        recs.append((now, decision.recommended_replicas))
        if decision.desired_replicas != current:
            moves.append((now.strftime("%H:%M"), current, decision.desired_replicas, decision.reason))
        if decision.desired_replicas > current:
            up = now
        current = decision.desired_replicas
    assert moves == [("13:12", 4, 3, "ScaleDownForecast"), ("13:17", 3, 2, "ScaleDownForecast")], moves
