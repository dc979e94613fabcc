"""The simulated policies on hand-checkable traces: HPA rules, KEDA's cron lift, decide()-driven
policies fed by fake forecasters (see fakes.py: no model can be exact, a fake can), and the oracle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from controller.simulate.engine import SimConfig, make_context, run_policy, simulate
from controller.simulate.hpa import Hpa, KedaCron
from controller.simulate.policies import POLICY_NAMES, PolicySettings, build, parse_policies
from controller.simulate.predictive import Oracle, Predictive
from forecasting import registry
from forecasting.base import Event
from tests.controller.simulate.fakes import Clairvoyant, LastValue

START = pd.Timestamp("2026-01-05", tz="UTC")
SPIKE_AT = 300 + 100  # position of the spike in the whole trace (test step 100)


def spike_trace() -> pd.Series:
    """100/min, a 30-minute spike to 1000 at test step 100; 300 steps of history, 200 of test."""
    values = np.full(500, 100.0)
    values[SPIKE_AT : SPIKE_AT + 30] = 1000.0
    return pd.Series(values, index=pd.date_range(START, periods=500, freq="1min"), name="spike")


def truth(index: pd.DatetimeIndex) -> np.ndarray:
    pos = ((index - START) // pd.Timedelta(minutes=1)).to_numpy()
    return np.where((pos >= SPIKE_AT) & (pos < SPIKE_AT + 30), 1000.0, 100.0)


CFG = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), max_replicas=500, test_days=200 / 1440)


@pytest.fixture(autouse=True)
def fake_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry.MODELS, Clairvoyant.name, Clairvoyant)
    monkeypatch.setitem(registry.MODELS, LastValue.name, LastValue)
    monkeypatch.setattr(Clairvoyant, "truth", staticmethod(truth))
    Clairvoyant.fitted_until.clear()
    yield


def test_hpa_misses_the_spike_for_lead_plus_one_steps() -> None:
    run = run_policy(make_context(spike_trace(), [], CFG), Hpa())
    # It sees the spike one step late (step 101) and the replicas are ready 3 steps later (104).
    short = np.flatnonzero(run.ready * 10 < spike_trace().to_numpy()[300:])
    assert short.tolist() == [100, 101, 102, 103]
    assert run.metrics.underprovisioned_steps == 4
    # Scale-up rule: 13 -> 26 -> 52 -> 104 -> 125 within the 4 syncs of one minute.
    assert run.asked[101] == 125
    assert run.metrics.unserved_fraction == pytest.approx(4 * (1000 - 130) / (170 * 100 + 30 * 1000))


def test_hpa_scale_down_waits_for_the_stabilization_window() -> None:
    run = run_policy(make_context(spike_trace(), [], CFG), Hpa())
    # The drop is observed at step 131; the 300 s window holds 125 through 135.
    assert run.asked[131:136].tolist() == [125] * 5
    assert run.asked[136] == 13


def test_hpa_tolerance_keeps_replicas() -> None:
    values = np.full(400, 100.0)
    values[350:] = 108.0  # +8 %: inside the 10 % tolerance of 13 replicas at 0.8 target? 108/104 = 1.04
    series = pd.Series(values, index=pd.date_range(START, periods=400, freq="1min"))
    run = run_policy(make_context(series, [], CFG), Hpa())
    assert set(run.asked[5:].tolist()) == {13}


def test_hpa_limits_scale_up_per_sync_on_15s_steps() -> None:
    values = np.full(400, 10.0)
    values[300:] = 2000.0
    series = pd.Series(values, index=pd.date_range(START, periods=400, freq="15s"))
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=5), test_days=100 * 15 / 86400)
    run = run_policy(make_context(series, [], cfg), Hpa())
    # One sync per step: doubling (or +4 pods) per sync: 2 -> 6 -> 12 -> 24 -> 48 -> 96 -> 192 -> 250.
    assert run.asked[:9].tolist() == [2, 6, 12, 24, 48, 96, 192, 250, 250]


def test_hpa_holds_without_metrics() -> None:
    values = np.full(400, 100.0)
    values[320:] = np.nan
    series = pd.Series(values, index=pd.date_range(START, periods=400, freq="1min"))
    run = run_policy(make_context(series, [], CFG), Hpa())
    assert set(run.asked[25:].tolist()) == {13}


def test_keda_cron_lifts_min_during_events_from_past_peaks() -> None:
    series = spike_trace()
    series.iloc[100:130] = 800.0  # a past promotion, seen in history
    past = Event("p1", "promo", series.index[100], series.index[130])
    coming = Event("p2", "promo", series.index[SPIKE_AT], series.index[SPIKE_AT + 30])
    keda = KedaCron()
    run = run_policy(make_context(series, [past, coming], CFG), keda)
    # Lifted to ceil(800 / (10 * 0.8)) = 100 from lead (3 steps) before the start to the end.
    assert run.asked[97] == 100 and run.asked[96] < 100
    assert run.metrics.unserved_fraction < run_policy(make_context(series, [], CFG), Hpa()).metrics.unserved_fraction
    assert keda.notes == []


def test_keda_cron_configured_value_and_unknown_kind() -> None:
    series = spike_trace()
    coming = Event("j1", "jackpot", series.index[SPIKE_AT], series.index[SPIKE_AT + 30])
    keda = KedaCron()
    run = run_policy(make_context(series, [coming], CFG), keda)
    assert run.asked[97] == 13  # never seen this kind, no expected lift: plain HPA
    assert "no past 'jackpot' event" in keda.notes[0]
    run = run_policy(make_context(series, [coming], CFG), KedaCron(event_min_replicas=140))
    assert run.asked[97:130].min() == 140


def test_pitboss_with_a_perfect_forecast_serves_everything() -> None:
    scaler = Predictive("pitboss", Clairvoyant.name, use_events=True)
    result = simulate(spike_trace(), [], CFG, [scaler], reference=Oracle())
    metrics = result.runs["pitboss"].metrics
    assert metrics.unserved_fraction == 0.0
    assert metrics.cost_vs_oracle is not None and metrics.cost_vs_oracle < 1.2


def test_forecast_blind_to_the_spike_is_as_late_as_reactive() -> None:
    scaler = Predictive("holt-winters", LastValue.name, use_events=False)
    run = run_policy(make_context(spike_trace(), [], CFG), scaler)
    assert run.metrics.underprovisioned_steps == 4


def test_refits_hourly_on_the_past_only() -> None:
    scaler = Predictive("pitboss", Clairvoyant.name, use_events=True, refit_every=timedelta(hours=1))
    ctx = make_context(spike_trace(), [], CFG)
    run_policy(ctx, scaler)
    refit_times = [ctx.index[t] for t in range(0, 200, 60)]
    assert scaler.refits == 4
    assert Clairvoyant.fitted_until == [t - pd.Timedelta(minutes=1) for t in refit_times]


def test_failed_refit_is_reported_and_holds() -> None:
    class Broken(LastValue):
        name = "fake-broken"

        def fit(self, history: pd.Series, events: object = ()) -> Broken:  # type: ignore[override]
            raise ValueError("history: too short")

    registry.MODELS["fake-broken"] = Broken
    try:
        scaler = Predictive("pitboss", "fake-broken", use_events=True)
        run = run_policy(make_context(spike_trace(), [], CFG), scaler)
    finally:
        del registry.MODELS["fake-broken"]
    assert scaler.failed_refits == 4
    assert "failed: history: too short" in scaler.notes[0]
    # Without a forecast it still scales up on observed demand and never down.
    assert run.asked[101] == 100
    assert (np.diff(run.asked) >= 0).all()


def test_oracle_asks_lead_steps_ahead() -> None:
    run = run_policy(make_context(spike_trace(), [], CFG), Oracle())
    assert run.asked[96] == 10 and run.asked[97] == 100
    assert run.asked[129] == 100 and run.asked[130] == 10
    assert run.metrics.unserved_fraction == 0.0


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("hpa,pitboss", ["hpa", "pitboss"]),
        (" oracle ", ["oracle"]),
        ("hpa,foo", None),
        ("", None),
        ("hpa,hpa", None),
    ],
)
def test_parse_policies(text: str, ok: list[str] | None) -> None:
    if ok is None:
        with pytest.raises(ValueError, match="policies"):
            parse_policies(text)
    else:
        assert parse_policies(text) == ok


def test_build_every_policy_by_name() -> None:
    for name in POLICY_NAMES:
        assert build(name, PolicySettings()).name == name
    with pytest.raises(ValueError, match="policies"):
        build("nope")


def test_bad_policy_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="hpa-target"):
        Hpa(target_utilization=1.5)
    with pytest.raises(ValueError, match="keda-min"):
        KedaCron(event_min_replicas=-1)
    with pytest.raises(ValueError, match="refit-every"):
        Predictive("p", "calendar", use_events=True, refit_every=timedelta(0))


def test_keda_cron_derives_from_the_most_recent_event_of_the_kind() -> None:
    series = spike_trace()
    series.iloc[20:40] = 1600.0  # an older, bigger promotion
    series.iloc[100:130] = 800.0  # the last one before the coming event
    older = Event("p0", "promo", series.index[20], series.index[40])
    past = Event("p1", "promo", series.index[100], series.index[130])
    coming = Event("p2", "promo", series.index[SPIKE_AT], series.index[SPIKE_AT + 30])
    run = run_policy(make_context(series, [older, past, coming], CFG), KedaCron())
    assert run.asked[97] == 100  # ceil(800 / 8), not ceil(1600 / 8)


def test_keda_cron_expected_lift_without_past_event() -> None:
    series = spike_trace()
    week_earlier = series.copy()
    week_earlier.index = week_earlier.index - pd.Timedelta(days=7)
    joined = pd.concat([week_earlier, series]).asfreq("1min")
    coming = Event("p2", "promo", series.index[SPIKE_AT], series.index[SPIKE_AT + 30], expected_lift=4.0)
    run = run_policy(make_context(joined, [coming], CFG), KedaCron())
    # A week earlier the same window peaked at 1000: 4 x 1000 / 8 = 500 (the max).
    assert run.asked[97] == 500


@pytest.mark.parametrize(("policy", "field"), [("pitboss", "pitboss_model"), ("holt-winters", "holt_winters_model")])
def test_an_unknown_model_fails_when_the_policy_is_built(policy: str, field: str) -> None:
    settings = PolicySettings(**{field: "typo"})  # type: ignore[arg-type]
    with pytest.raises(ValueError) as info:
        build(policy, settings)
    assert str(info.value) == f"{field}: unknown model 'typo'; expected one of {', '.join(registry.names())}"
