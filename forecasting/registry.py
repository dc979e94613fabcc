"""The explicit name -> class registry of forecasting models.

Add a model by writing one file in ``forecasting/models`` and one line here
(the recipe: docs/adding-a-model.md). Called by the CLI (--model/--models),
backtests, the simulator, the loop, and spec validation (``names``).

Models never import this module (an import-linter contract): a model that
builds other models, like ``auto``, is handed the table by ``create``.
"""

from __future__ import annotations

import inspect
from typing import Any

from forecasting.base import Forecaster
from forecasting.models import baselines
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

# The models built into the product (the optional baselines are added at run
# time by ``register_baselines``); the CRD's ``forecast.model`` enum.
BUILTIN: tuple[str, ...] = tuple(MODELS)


def names() -> list[str]:
    """Registered model names, in registration order."""
    return list(MODELS)


def create(name: str, **params: Any) -> Forecaster:
    """A new, unfitted model by registry name; ValueError naming the field if unknown."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"model: unknown model {name!r}; expected one of {', '.join(MODELS)}") from None
    if "factory" in inspect.signature(cls).parameters:  # a model built from others (auto): hand it the table
        params.setdefault("factory", MODELS)
    return cls(**params)


def register_baselines(names: tuple[str, ...] | None = None) -> list[str]:
    """Add the baselines (all, or ``names``) whose library is installed; returns the added names.

    ValueError naming the model when one of ``names`` is unknown or its library is missing.
    """
    loaded = baselines.load(names)
    for name, cls in loaded.items():
        MODELS.setdefault(name, cls)
    return list(loaded)
