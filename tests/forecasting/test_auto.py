"""The auto model: holdout scores for every candidate, the best one chosen and delegated to."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting import registry
from forecasting.base import Event
from forecasting.models.auto import Auto


def test_scores_every_candidate_and_delegates_to_the_best(casino_5m: tuple[pd.Series, list[Event]]) -> None:
    series, events = casino_5m
    model = Auto(candidates=("seasonal-naive", "calendar"), factory=registry.MODELS).fit(series, events)
    assert set(model.scores) == {"seasonal-naive", "calendar"}
    assert model.chosen == min(model.scores, key=model.scores.__getitem__)
    assert model.chosen == "calendar"  # events make the calendar model win on casino traffic
    forecast = model.predict(6, events)
    assert forecast.model == "auto(calendar)"
    assert forecast.index[0] == series.index[-1] + pd.Timedelta(minutes=5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"candidates": ("prophet",)}, "candidates"), ({"candidates": ()}, "candidates"), ({"origins": 0}, "origins"),
     ({"horizon": 0}, "horizon")],
)
def test_bad_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Auto(**kwargs, factory=registry.MODELS)  # type: ignore[arg-type]
