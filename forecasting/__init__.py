"""Demand forecasting: the Forecaster protocol, its models and calendar features.

Pure numerics: pandas/numpy in, ``Forecast`` out, no I/O. Called by the CLI
(`pitboss forecast`, `pitboss backtest`), the simulator and the reconcile loop.
"""

from forecasting.base import Event, Forecast, Forecaster

__all__ = ["Event", "Forecast", "Forecaster"]
