"""History hygiene: regularising, rejecting with the row named, UTC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.series import extend_history, fill_gaps, future_index, prepare_history

IDX = pd.date_range("2026-01-01", periods=6, freq="15min", tz="UTC")


def test_naive_index_is_read_as_utc_and_other_zones_converted() -> None:
    naive = pd.Series([1.0, 2, 3], index=IDX[:3].tz_localize(None))
    assert str(prepare_history(naive).index.tz) == "UTC"
    berlin = pd.Series([1.0, 2, 3], index=IDX[:3].tz_convert("Europe/Berlin"))
    out = prepare_history(berlin)
    assert out.index[0] == IDX[0] and str(out.index.tz) == "UTC"


def test_unsorted_rows_are_sorted_and_missing_points_become_gaps() -> None:
    series = pd.Series([3.0, 1.0, 6.0, 2.0], index=IDX[[2, 0, 5, 1]])
    out = prepare_history(series)
    assert out.index.equals(IDX) and out.index.freq == pd.Timedelta("15min")
    np.testing.assert_array_equal(out.to_numpy(), [1.0, 2.0, 3.0, np.nan, np.nan, 6.0])


def test_off_grid_row_is_named_by_its_input_position() -> None:
    index = pd.DatetimeIndex([IDX[3] + pd.Timedelta(minutes=7), *IDX[:3]])
    with pytest.raises(ValueError, match=r"row 0: .*00:52:00.* off the"):
        prepare_history(pd.Series([1.0, 2, 3, 4], index=index))


@pytest.mark.parametrize(
    ("index", "values", "message"),
    [
        (IDX[[0, 1, 1]], [1.0, 2, 3], r"row 2: duplicate timestamp"),
        (IDX[[0, 1]].append(pd.DatetimeIndex([IDX[2] + pd.Timedelta(minutes=7)])), [1.0, 2, 3],
         r"row 2: .* off the 0 days 00:15:00 grid"),
        (IDX[:3], [1.0, -2, 3], r"row 1: expected a finite non-negative value"),
        (IDX[:3], [1.0, np.inf, 3], r"row 1: expected a finite non-negative value"),
        (IDX[:1], [1.0], r"needs at least 2 points"),
        (IDX[:3], [np.nan, np.nan, np.nan], r"every value is empty"),
    ],
)
def test_bad_histories_name_the_row(index: pd.DatetimeIndex, values: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare_history(pd.Series(values, index=index))


def test_non_datetime_index_is_rejected() -> None:
    with pytest.raises(ValueError, match="history: expected a DatetimeIndex"):
        prepare_history(pd.Series([1.0, 2.0]))


def test_fill_gaps_prefers_one_season_back_then_interpolates() -> None:
    values = np.array([1.0, 2.0, 3.0, np.nan, 5.0, np.nan])
    np.testing.assert_array_equal(fill_gaps(values, season=3), [1, 2, 3, 1, 5, 3])
    np.testing.assert_array_equal(fill_gaps(np.array([1.0, np.nan, 3.0])), [1, 2, 3])


def test_extend_history_appends_after_the_end_only() -> None:
    history = prepare_history(pd.Series([1.0, 2, 3], index=IDX[:3]))
    new = pd.Series([9.0, 4.0, 6.0], index=IDX[[2, 3, 5]])
    out = extend_history(history, new)
    assert out.index.equals(IDX)
    np.testing.assert_array_equal(out.to_numpy(), [1, 2, 3, 4, np.nan, 6])
    with pytest.raises(ValueError, match=r"new_points: .* grid"):
        extend_history(history, pd.Series([1.0], index=[IDX[4] + pd.Timedelta(minutes=1)]))


@pytest.mark.parametrize("last", [pd.Timestamp("2026-01-01T00:00Z"), pd.Timestamp("2026-01-01T01:00+01:00"),
                                  pd.Timestamp("2026-01-01T00:00Z").as_unit("us")])
def test_future_index_is_date_range_and_shared_per_grid(last: pd.Timestamp) -> None:
    step = pd.Timedelta(minutes=1)
    got = future_index(last, step, 5)
    assert got.equals(pd.date_range(last + step, periods=5, freq=step)) and str(got.tz) == str(last.tz)
    assert got.unit == pd.date_range(last + step, periods=5, freq=step).unit
    assert future_index(last, step, 5) is got  # one index for every forecast of these steps
