"""The in-memory fakes keep the DemandSource contract, and read_current turns failures into unknown readings."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from controller.errors import PermanentError
from controller.sources.base import DemandSource
from controller.sources.fakes import FakeDemandSource, FakeSLISource
from controller.sources.observe import read_current
from controller.sources.sli import SLISource

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_fake_demand_source() -> None:
    series = pd.Series([1.0, float("nan"), 3.0], index=pd.date_range(T0, periods=3, freq="1min"))
    fake = FakeDemandSource(series)
    assert isinstance(fake, DemandSource)
    assert fake.current(T0 + timedelta(seconds=30)) == 1.0
    assert fake.current(T0 + timedelta(minutes=1)) is None  # NaN: unknown
    assert fake.current(T0 - timedelta(minutes=1)) is None
    hist = fake.history(T0, T0 + timedelta(minutes=4), timedelta(minutes=1))
    assert hist.iloc[0] == 1.0 and math.isnan(hist.iloc[1]) and math.isnan(hist.iloc[3])


def test_read_current_on_failures() -> None:
    fake = FakeDemandSource(value=7.0)
    assert read_current(fake, T0).value == 7.0 and read_current(fake, T0).available
    fake.fail_retryable("prometheus down")
    reading = read_current(fake, T0)
    assert reading.value is None and reading.error == "prometheus down" and not reading.available
    fake.fail_permanent("bad query")
    with pytest.raises(PermanentError):
        read_current(fake, T0)
    fake.recover()
    assert read_current(fake, T0).value == 7.0
    assert read_current(FakeDemandSource(), T0).error == "no current demand from FakeDemandSource"


def test_fake_sli_source() -> None:
    fake = FakeSLISource({"availability": {timedelta(hours=1): 0.02}})
    assert isinstance(fake, SLISource)
    got = fake.error_ratios(T0, [timedelta(hours=1), timedelta(minutes=5)])
    assert got == {"availability": {timedelta(hours=1): 0.02, timedelta(minutes=5): None}}
