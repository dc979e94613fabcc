"""The demo scenario: a quiet live window, one shaped event inside it, units scaled to requests/s."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from controller.local.scenario import STEP, build_scenario


@pytest.fixture(scope="module")
def scenario():  # type: ignore[no-untyped-def]
    return build_scenario(90, base_rate=10.0)


def test_live_window_follows_history_and_holds_the_event(scenario) -> None:  # type: ignore[no-untyped-def]
    live, history, event = scenario.live, scenario.history, scenario.event
    assert len(live) == 90 and live.index.freq == STEP
    assert history.index[-1] + STEP == live.index[0] == scenario.start
    assert event.start == live.index[36] and event.end == event.start + pd.Timedelta(minutes=36)
    assert event.kind == "tournament" and event.expected_lift == 3.5
    assert event in scenario.events and all(e.start < scenario.start for e in scenario.events if e is not event)
    # no random event's shape touches the window
    for e in scenario.events:
        if e is not event:
            assert e.end + pd.Timedelta(hours=2) <= scenario.start


def test_units_are_requests_per_second_and_the_event_lifts_them(scenario) -> None:  # type: ignore[no-untyped-def]
    before = scenario.history.iloc[-30:].mean()
    assert before == pytest.approx(10.0, rel=1e-9)
    event = scenario.event
    plateau = scenario.live[event.start + pd.Timedelta(minutes=10): event.end - STEP].mean()
    quiet = scenario.live[: event.start - STEP].mean()
    assert 2.5 < plateau / quiet < 5.0


def test_rate_at_interpolates_and_is_zero_outside(scenario) -> None:  # type: ignore[no-untyped-def]
    live = scenario.live
    a, b = live.iloc[0], live.iloc[1]
    assert scenario.rate_at(live.index[0]) == pytest.approx(a)
    assert scenario.rate_at(live.index[0] + pd.Timedelta(seconds=30)) == pytest.approx((a + b) / 2)
    assert scenario.rate_at(live.index[0] - pd.Timedelta(minutes=1)) == 0.0
    assert scenario.rate_at(live.index[-1] + pd.Timedelta(minutes=5)) == 0.0


def test_is_deterministic_for_a_seed() -> None:
    a, b = build_scenario(30, seed=3), build_scenario(30, seed=3)
    pd.testing.assert_series_equal(a.live, b.live)
    assert a.event == b.event


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"live_minutes": 10}, "live_minutes"),
        ({"event_at": 0.95}, "event_at"),
        ({"event_share": 0.9}, "event_share"),
        ({"base_rate": 0}, "base_rate"),
        ({"kind": "bingo"}, "kind"),
        ({"lift": 0.5}, "lift"),
    ],
)
def test_bad_inputs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"live_minutes": 60, **kwargs}
    with pytest.raises(ValueError, match=f"^{field}:"):
        build_scenario(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("unit", ["s", "us"])
def test_rate_at_whatever_the_live_index_resolution(unit: str) -> None:
    """pandas 3 builds the synth trace's stamps at second resolution: the demo offered 0 requests."""
    base = build_scenario(30, seed=3)
    live = base.live.copy()
    live.index = live.index.as_unit(unit)
    scenario = replace(base, live=live)
    at = base.live.index[5] + pd.Timedelta(seconds=30)
    assert scenario.rate_at(at) == pytest.approx(base.rate_at(at)) and scenario.rate_at(at) > 0
    assert scenario.rate_at(base.live.index[-1] + pd.Timedelta(minutes=5)) == 0.0


def test_scenario_stamps_are_nanoseconds() -> None:
    scenario = build_scenario(30, seed=3)
    assert scenario.live.index.unit == scenario.history.index.unit == "ns"
    assert scenario.event.start.unit == "ns"
