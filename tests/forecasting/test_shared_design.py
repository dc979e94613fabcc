"""Policies on one grid and one event calendar share the calendar fit's design (``shared_design``).

N policies whose demand differs but whose grid, events and observed points are the same build the
design matrix and its Gram matrix once, and each forecast is bit-identical to the one a fit
that built its own design gives (``shared_design.disabled()``, what every fit did before the
cache). A policy with a gap of its own, or other events, gets a design of its own; the cache
stays within its bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pytest

from forecasting.base import Event, Forecast
from forecasting.models import shared_design
from forecasting.models.calendar import Calendar

HORIZON = 24


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    shared_design.CACHE.clear()
    yield
    shared_design.CACHE.clear()


def _policies(history: pd.Series, n: int) -> list[pd.Series]:
    """N services on the same grid: the same shape at other levels, with noise of their own."""
    rng = np.random.default_rng(3)
    return [history * (1 + k) * np.exp(rng.normal(0, 0.05, len(history))) for k in range(n)]


def _forecasts(histories: Sequence[pd.Series], events: Sequence[Event]) -> list[Forecast]:
    return [Calendar().fit(h, events).predict(HORIZON, events) for h in histories]


def _same(a: Forecast, b: Forecast) -> bool:
    return bool(np.array_equal(a.mean, b.mean)) and all(
        np.array_equal(a.quantiles[q], b.quantiles[q]) for q in a.quantiles)


def test_n_policies_sharing_a_grid_and_events_build_the_design_once(
        casino_5m: tuple[pd.Series, list[Event]]) -> None:
    history, events = casino_5m
    histories = _policies(history, 4)
    shared = _forecasts(histories, events)
    assert (shared_design.CACHE.built, shared_design.CACHE.hits) == (1, 3)
    with shared_design.disabled():
        own = _forecasts(histories, events)
    assert shared_design.CACHE.built == 1 + 4  # disabled: every fit built its own
    assert all(_same(a, b) for a, b in zip(shared, own, strict=True))  # bit-identical, not close


@pytest.mark.parametrize("change", ["gap", "events", "grid"])
def test_a_policy_with_other_points_events_or_grid_gets_its_own_design(
        casino_5m: tuple[pd.Series, list[Event]], change: str) -> None:
    history, events = casino_5m
    first = _forecasts([history], events)[0]
    other, other_events = history.copy(), list(events)
    if change == "gap":
        other.iloc[100:110] = np.nan  # its own observed points
    elif change == "events":
        other_events = other_events[:-1]
    else:
        other = other.iloc[1:]  # starts a step later
    second = _forecasts([other], other_events)[0]
    assert (shared_design.CACHE.built, shared_design.CACHE.hits) == (2, 0)
    with shared_design.disabled():
        assert _same(second, _forecasts([other], other_events)[0])
    assert not _same(first, second)


def test_a_full_cache_makes_room_by_evicting_older_grids(casino_30m: tuple[pd.Series, list[Event]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    history, events = casino_30m
    Calendar().fit(history.iloc[:-3], events)
    monkeypatch.setattr(shared_design.CACHE, "max_bytes", shared_design.CACHE.nbytes * 3 // 2)  # room for one
    for k in range(1, 4):  # a new grid every time (the history moves a step): no fit goes back to the older one
        Calendar().fit(history.iloc[: len(history) - 3 + k], events)
        assert len(shared_design.CACHE._entries) == 1 and shared_design.CACHE.unkept == 0
    assert shared_design.CACHE.built == 4 and shared_design.CACHE.nbytes <= shared_design.CACHE.max_bytes
    Calendar().fit(history, events)  # the newest is still there
    assert shared_design.CACHE.hits == 1


def _design(nbytes: int) -> shared_design.FitDesign:
    observed = np.zeros((nbytes // 8 - 1, 1))
    return shared_design.FitDesign(width=1, layout=None, observed=observed, gram=np.zeros((1, 1)))  # type: ignore[arg-type]


def test_more_calendars_than_fit_keep_the_hits_of_those_that_fit() -> None:
    """Fits of three event calendars interleave on one grid, room for two: two keep their hits (an LRU of
    two entries shares nothing here: each fit evicts the design the next one needs); the next step's
    designs replace them."""
    cache = shared_design.DesignCache(max_bytes=2 * 1000)
    for _ in range(4):
        for calendar in ("a", "b", "c"):
            cache.get((calendar, 1), lambda: _design(1000), end=1)
    assert (cache.built, cache.hits, cache.unkept) == (6, 6, 4) and cache.nbytes <= 2000
    for calendar in ("a", "b", "c"):
        cache.get((calendar, 2), lambda: _design(1000), end=2)  # the next step: the older grid makes room
    assert {k for k in cache._entries} == {("a", 2), ("b", 2)}
