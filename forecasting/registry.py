"""The explicit name -> class registry of forecasting models.

Add a model by writing one file in ``forecasting/models`` and one line here
(the recipe: docs/adding-a-model.md). Called by the CLI (--model/--models),
backtests, the simulator, the loop, and spec validation (``names``).

Models never import this module (an import-linter contract): a model that
builds other models, like ``auto``, is handed the table by ``create``.
"""

from __future__ import annotations

import functools
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
    if takes_factory(cls):  # a model built from others (auto): hand it the table
        params.setdefault("factory", MODELS)
    return cls(**params)


@functools.cache
def takes_factory(cls: type[Forecaster]) -> bool:
    """Does ``cls`` take the registry table as ``factory``? Read from its signature once per class.

    Cached per class rather than per ``MODELS`` entry so that entries added straight into the
    dict (``register_baselines``, tests) are covered too; a class's signature never changes.
    """
    return "factory" in inspect.signature(cls).parameters


def register_baselines(names: tuple[str, ...] | None = None) -> list[str]:
    """Add the baselines (all, or ``names``) whose library is installed; returns the added names.

    ValueError naming the model when one of ``names`` is unknown or its library is missing.
    """
    loaded = baselines.load(names)
    for name, cls in loaded.items():
        MODELS.setdefault(name, cls)
    return list(loaded)
