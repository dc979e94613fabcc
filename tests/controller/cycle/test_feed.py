"""The forecast feed's refit / update / fallback policy, table-driven over the three shells' policies.

A tiny in-process forecaster stands in for a model (what is tested is when the feed fits, updates
and falls back, not forecasting).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from controller.cycle.feed import FeedPolicy, ForecastFeed, value_at
from forecasting.base import Forecast
from tests.controller.cycle.flat_model import STEP, T0, Flat


def _series(end: pd.Timestamp, value: float) -> pd.Series:
    return pd.Series(value, index=pd.date_range(end - 9 * STEP, end, freq=STEP), dtype=float)


def _refresh(feed: ForecastFeed, minute: int, value: float = 1.0) -> Forecast | None:
    end = T0 + minute * STEP
    return feed.refresh(end, history=lambda: _series(end, value), new_points=lambda: _series(end, value).tail(1),
                        horizon=5)


OPERATOR = FeedPolicy(refit_every=timedelta(minutes=10), refit_without_update=True)


@pytest.mark.parametrize(("policy", "fail", "minutes", "fits", "updates"), [
    (OPERATOR, "", [0, 0, 1, 2], 1, 2),  # fit once, reuse the same end, update each new step
    (OPERATOR, "", [0, 5, 10, 11], 2, 2),  # refit once the fit is refit_every old
    (OPERATOR, "update", [0, 1, 2], 3, 0),  # a failed update refits at once
    (FeedPolicy(refit_every=timedelta(minutes=10), update_every=timedelta(minutes=3)), "", [0, 1, 2, 3, 6], 1, 2),
    (FeedPolicy(refit_every=None), "", [1, 2, 3], 0, 3),  # the model came fitted: updates only
])
def test_when_the_feed_fits_and_updates(policy: FeedPolicy, fail: str, minutes: list[int], fits: int,
                                        updates: int) -> None:
    model = Flat(fail)
    fitted = policy.refit_every is None
    feed = ForecastFeed(lambda: model, policy, model=model if fitted else None, fitted_end=T0 if fitted else None)
    for minute in minutes:
        _refresh(feed, minute)
    assert (feed.fits, feed.updates) == (fits, updates)


def test_a_key_change_refits_and_a_model_without_update_refits_each_step_for_the_operator() -> None:
    class NoUpdate(Flat):
        update = None  # type: ignore[assignment]

    feed = ForecastFeed(NoUpdate, OPERATOR)
    for minute in (0, 1, 2):
        _refresh(feed, minute)
    assert feed.fits == 3
    keep = ForecastFeed(NoUpdate, FeedPolicy(refit_every=timedelta(minutes=10)))  # the simulator's holt-winters
    for minute in (0, 1, 2):
        _refresh(keep, minute)
    assert keep.fits == 1
    end = T0 + 2 * STEP
    keep.refresh(end, history=lambda: _series(end, 1.0), new_points=lambda: _series(end, 1.0), horizon=5, key="v2")
    assert keep.fits == 2


@pytest.mark.parametrize(("on_update_failure", "falls_back_to"), [("plan", "plan"), ("keep", "previous")])
def test_a_failed_update_falls_back_as_the_policy_says(on_update_failure: str, falls_back_to: str) -> None:
    model = Flat("update")
    plan = Flat().fit(_series(T0, 7.0)).predict(60)
    feed = ForecastFeed(lambda: model, FeedPolicy(refit_every=timedelta(hours=1), on_update_failure=on_update_failure,
                                                  max_update_failures=2), plan=plan)  # type: ignore[arg-type]
    model.fail = ""
    previous = _refresh(feed, 0, 3.0)
    model.fail = "update"
    got = _refresh(feed, 1)
    assert got is (plan if falls_back_to == "plan" else previous)
    _refresh(feed, 2)
    _refresh(feed, 3)
    assert feed.failed_updates == 2  # then it stops trying
    assert [f.kind for f in feed.failures] == ["update", "update"]


@pytest.mark.parametrize(("on_fit_failure", "has_forecast"), [("drop", False), ("keep", True)])
def test_a_failed_fit_drops_or_keeps_the_forecast(on_fit_failure: str, has_forecast: bool) -> None:
    model = Flat()
    feed = ForecastFeed(lambda: model, FeedPolicy(refit_every=timedelta(minutes=1), on_fit_failure=on_fit_failure,
                                                  refit_without_update=True))  # type: ignore[arg-type]
    assert _refresh(feed, 0) is not None
    model.fail = "fit"
    model.update = None  # type: ignore[assignment,method-assign]
    assert (_refresh(feed, 1) is not None) is has_forecast
    assert feed.error == "forecast failed: history: broken on purpose" and feed.failed_fits == 1


def test_value_at_reads_the_step_holding_now() -> None:
    fc = Flat().fit(_series(T0, 4.0)).predict(3)
    assert value_at(fc, 0.5, (T0 + STEP + pd.Timedelta(seconds=30)).to_pydatetime()) == 4.0
    assert value_at(fc, 0.5, T0.to_pydatetime()) is None and value_at(None, 0.5, T0.to_pydatetime()) is None


class _Frozen(Flat):
    update = None  # type: ignore[assignment]


def _deferred(feed: ForecastFeed, minute: int, value: float = 1.0, key: object = None, basis: object = None,
              horizon: int = 5) -> Forecast | None:
    end = T0 + minute * STEP
    return feed.refresh(end, history=lambda: _series(end, value), new_points=lambda: _series(end, value).tail(1),
                        horizon=horizon, key=key, basis=basis, defer_refit=True, changed="the event calendar changed")


@pytest.mark.parametrize(("model", "first", "minute", "key", "basis", "fits", "updates", "deferred", "level"), [
    (Flat, False, 0, None, None, 0, 0, 1, None),  # a first fit waits: no forecast, and the error says why
    (Flat, True, 10, None, None, 1, 1, 1, 2.0),  # due by age: the current model updates instead
    (_Frozen, True, 10, None, None, 1, 0, 1, 1.0),  # due by age, no update(): the current forecast stays
    # A changed key (spec, events) waits for the budget too: the previous model decides, updated ...
    (Flat, True, 1, "v2", None, 1, 1, 1, 2.0),
    (_Frozen, True, 1, "v2", None, 1, 0, 1, 1.0),  # ... or predicting the new horizon and events, no fit
    (Flat, True, 1, "v2", "other series", 1, 0, 1, None),  # another series or grid: no forecast till the refit
])
def test_a_deferred_refit_keeps_deciding_on_the_forecast_it_has(model: type[Flat], first: bool, minute: int,
                                                                 key: object, basis: object, fits: int, updates: int,
                                                                 deferred: int, level: float | None) -> None:
    feed = ForecastFeed(model, OPERATOR)
    if first:
        _refresh(feed, 0, 1.0)
    forecast = _deferred(feed, minute, 2.0, key, basis, horizon=7)
    assert (feed.fits, feed.updates, feed.deferred) == (fits, updates, deferred)
    if level is None:
        assert forecast is None and feed.error is not None and "fit budget" in feed.error
    else:
        assert forecast is not None and forecast.mean[0] == level
        assert key is None or len(forecast.index) == 7  # a changed key predicts its new horizon (was 5)
    stale = key is not None and level is not None
    assert (feed.note is not None and "previous forecast" in feed.note
            and "the event calendar changed" in feed.note) is stale, feed.note
    if key is not None:  # the budget again: the queued refit runs, and the forecast is a fit for the key
        end = T0 + minute * STEP
        got = feed.refresh(end, history=lambda: _series(end, 3.0), new_points=lambda: _series(end, 3.0).tail(1),
                           horizon=7, key=key, basis=basis)
        assert got is not None and got.mean[0] == 3.0 and feed.fits == fits + 1 and feed.note is None


@pytest.mark.parametrize("minute", [1, 10])  # the update was due (a new step), or the refit was due by age
def test_a_failed_update_over_budget_waits_for_the_next_cycle_instead_of_refitting(minute: int) -> None:
    model = Flat()
    feed = ForecastFeed(lambda: model, OPERATOR)
    kept = _refresh(feed, 0, 1.0)
    model.fail = "update"
    assert _deferred(feed, minute, 2.0) is kept  # over budget: no fit, the forecast it had
    assert (feed.fits, feed.failed_updates, feed.deferred) == (1, 1, 2 if minute == 10 else 1)
    assert _deferred(feed, minute, 2.0) is kept and feed.fits == 1  # the next cycle, still over budget
    model.fail = ""
    got = _refresh(feed, minute, 2.0)  # budget again: the update is retried over the points it missed
    assert got is not None and got.mean[0] == 2.0 and feed.fits == (2 if minute == 10 else 1)
    model.fail = "update"
    refitted = _refresh(feed, minute + 1, 3.0)  # within budget a failed update refits at once, as before
    assert refitted is not None and refitted.mean[0] == 3.0


def test_value_at_reads_a_quantile_beyond_the_stored_levels() -> None:
    """The operator's and the local loop's gauges read the forecast at the decision's quantile, which the
    newsvendor rule may put above p99 or below the lowest level: read on the tail, never an error."""
    index = pd.date_range(T0, periods=3, freq=STEP)
    levels = {0.5: 100.0, 0.9: 110.0, 0.95: 115.0, 0.99: 120.0}
    fc = Forecast(index, np.full(3, 100.0), {q: np.full(3, v) for q, v in levels.items()}, model="test")
    at = (T0 + pd.Timedelta(seconds=30)).to_pydatetime()
    high, top, low = value_at(fc, 0.999, at), value_at(fc, 0.99, at), value_at(fc, 0.2, at)
    assert high is not None and top is not None and low is not None
    assert high == pytest.approx(120.0 + 5.0 * np.log(10) / np.log(5)) and high > top
    assert low == pytest.approx(100.0 - 10.0 * np.log(0.5 / 0.2) / np.log(0.9 / 0.5))
