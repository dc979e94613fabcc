"""Small synthetic series shared by the forecasting tests (fast: 30-minute steps)."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.base import Event
from forecasting.synth import synth_trace


@pytest.fixture(scope="session")
def casino_30m() -> tuple[pd.Series, list[Event]]:
    """Ten days of casino-shaped demand at 30-minute steps, with its events."""
    return synth_trace(days=10, step="30min", seed=11)


@pytest.fixture(scope="session")
def casino_5m() -> tuple[pd.Series, list[Event]]:
    """Fifteen days of casino-shaped demand at 5-minute steps, with its events."""
    return synth_trace(days=15, step="5min", seed=3)
