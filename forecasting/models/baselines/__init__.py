"""Benchmark baselines: the forecasting methods a user would pick instead of Pitboss's calendar model.

Optional models behind the same ``Forecaster`` protocol, each needing a
library the product does not depend on (the ``bench`` extra installs them):

* ``mstl``: statsforecast's MSTL (daily and weekly seasons) with an AutoETS
  trend, the issue's "MSTL(24,168)+AutoETS" at any step; no events;
* ``autoets``: statsforecast's AutoETS with the daily season (statsforecast
  cannot model a season over 24 points, so at sub-hourly steps it is
  non-seasonal: what a user gets); no events;
* ``prophet``: Prophet with daily and weekly seasonality and one
  multiplicative regressor per event kind (its "holidays", at any length);
* ``gbm``: LightGBM quantile regression on calendar features (slot of the
  week, event kinds) and the demand one day and one week earlier.

Nothing here is imported by the product at import time: ``load()`` returns
the classes of the baselines whose library imports, and
``forecasting.registry.register_baselines`` adds them to the registry (called
by the simulator's policy builder only when such a policy is asked for, and
by the benchmarks). This package never imports the registry. Each model
module imports its library lazily.
"""

from __future__ import annotations

import importlib
import importlib.util

from forecasting.base import Forecaster

# name -> (module in this package, class, the library it needs)
BASELINES: dict[str, tuple[str, str, str]] = {
    "mstl": ("statsforecast_models", "Mstl", "statsforecast"),
    "autoets": ("statsforecast_models", "AutoEts", "statsforecast"),
    "prophet": ("prophet_model", "ProphetModel", "prophet"),
    "gbm": ("gbm", "Gbm", "lightgbm"),
}


def missing() -> dict[str, str]:
    """Baselines whose library is not installed: name -> library."""
    return {name: lib for name, (_, _, lib) in BASELINES.items() if importlib.util.find_spec(lib) is None}


def load(names: tuple[str, ...] | None = None) -> dict[str, type[Forecaster]]:
    """The classes of the baselines (all, or ``names``) whose library is installed: name -> class.

    ValueError naming the model when one of ``names`` is unknown or its library is missing.
    """
    wanted = tuple(BASELINES) if names is None else names
    absent = missing()
    loaded: dict[str, type[Forecaster]] = {}
    for name in wanted:
        if name not in BASELINES:
            raise ValueError(f"model: unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
        if name in absent:
            if names is None:
                continue
            raise ValueError(f"model: {name!r} needs the {absent[name]!r} package (pip install 'pitboss[bench]')")
        module, cls, _ = BASELINES[name]
        loaded[name] = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return loaded
