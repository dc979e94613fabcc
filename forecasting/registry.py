"""The explicit name -> class registry of forecasting models.

Add a model by writing one file in ``forecasting/models`` and one line here.
Called by the CLI (--model/--models), backtests, the simulator and the loop.
"""

from __future__ import annotations

from typing import Any

from forecasting.base import Forecaster
from forecasting.models.auto import Auto
from forecasting.models.calendar import Calendar
from forecasting.models.holt_winters import HoltWinters
from forecasting.models.seasonal_naive import SeasonalNaive

# name -> class; one line per model file.
MODELS: dict[str, type[Forecaster]] = {
    SeasonalNaive.name: SeasonalNaive,
    HoltWinters.name: HoltWinters,
    Calendar.name: Calendar,
    Auto.name: Auto,
}


def names() -> list[str]:
    """Registered model names, in registration order."""
    return list(MODELS)


def create(name: str, **params: Any) -> Forecaster:
    """A new, unfitted model by registry name; ValueError naming the field if unknown."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"model: unknown model {name!r}; expected one of {', '.join(MODELS)}") from None
    return cls(**params)
