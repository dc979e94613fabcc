"""Headroom from economics: the newsvendor quantile, table-driven and as a property (hypothesis).

The critical ratio c_u / (c_u + c_o) over the sizing window, read off the
forecast's quantiles (on their exponential tail beyond the outermost), and
what decide() does and says with it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.core.decide import decide
from controller.core.decision import ObservedState
from controller.core.headroom import choose, critical_ratio, label
from controller.core.policy import Costs, Policy
from forecasting.base import Forecast

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10, seconds=15)  # lead 10m + sync 15s


def forecast(levels: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99), base: float = 1000.0) -> Forecast:
    """Flat forecast whose q quantile is base * (1 + q): every level distinct and monotone."""
    index = pd.date_range(NOW, periods=30, freq="1min")
    mean = np.full(30, base * 1.5)
    return Forecast(index, mean, {q: np.full(30, base * (1 + q)) for q in levels}, model="test")


def policy(**spec: object) -> Policy:
    return Policy.model_validate({"capacityPerReplica": 50, "leadTime": "10m", "maxReplicas": 500, **spec})


@pytest.mark.parametrize(
    ("unserved", "replica_hour", "capacity", "expected"),
    [
        # c_u = u * cap * W_s, c_o = r * W_h: the ratio is u*cap / (u*cap + r/3600), whatever W is.
        (1 / 3600, 1.0, 1.0, 0.5),  # one unserved req/s-for-an-hour costs what an idle replica-hour does
        (0.01, 0.5, 50.0, 0.5 / (0.5 + 0.5 / 3600)),
        (1e-6, 1.0, 10.0, 1e-5 / (1e-5 + 1 / 3600)),
        (9 / 3600, 1.0, 1.0, 0.9),
    ],
)
def test_critical_ratio_table(unserved: float, replica_hour: float, capacity: float, expected: float) -> None:
    under, over, ratio = critical_ratio(Costs(unserved_request=unserved, replica_hour=replica_hour), capacity, WINDOW)
    assert ratio == pytest.approx(expected)
    assert under == pytest.approx(unserved * capacity * WINDOW.total_seconds())
    assert over == pytest.approx(replica_hour * WINDOW.total_seconds() / 3600)


def test_window_cancels_in_the_ratio() -> None:
    costs = Costs(unserved_request=0.001, replica_hour=2.0)
    ratios = {critical_ratio(costs, 20.0, timedelta(minutes=m))[2] for m in (1, 10, 90)}
    assert max(ratios) - min(ratios) < 1e-12


def costs_for(q: float, capacity: float = 50.0, replica_hour: float = 1.0) -> dict[str, float]:
    """Costs whose critical ratio is exactly q."""
    return {"unservedRequest": q / (1 - q) * replica_hour / (3600 * capacity), "replicaHour": replica_hour}


@pytest.mark.parametrize(
    ("q", "levels", "extrapolated", "says"),
    [
        (0.95, (0.5, 0.9, 0.95, 0.99), False, "newsvendor q0.95"),
        (0.97, (0.5, 0.9, 0.95, 0.99), False, "newsvendor q0.97"),  # between two columns
        (0.7, (0.5, 0.9, 0.95, 0.99), False, "newsvendor q0.7"),
        (0.999, (0.5, 0.9, 0.95, 0.99), True, "beyond the forecast's highest quantile p99: read on its exponential"
         " tail (scale from p95..p99)"),
        (0.3, (0.5, 0.9, 0.95, 0.99), True, "beyond the forecast's lowest quantile p50"),
        (0.97, (0.1, 0.5, 0.9, 0.95), True, "highest quantile p95: read on its exponential tail (scale from p90..p95)"),
    ],
)
def test_choose_sizes_at_the_ratio_and_names_a_tail(q: float, levels: tuple[float, ...], extrapolated: bool,
                                                     says: str) -> None:
    h = choose(policy(costs=costs_for(q)), forecast(levels), WINDOW)
    assert h.source == "newsvendor"
    assert h.quantile == pytest.approx(q) == h.ratio
    assert h.extrapolated is extrapolated
    assert says in h.text and "unservedRequest" in h.text and "replicaHour" in h.text
    if not extrapolated:
        assert "tail" not in h.text


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # levels 0.5 .. 0.99 of base * (1 + q), base 1000: the tail's scale is (1990 - 1950) / ln(0.05 / 0.01)
        (0.99, 1990.0),
        (0.995, 1990.0 + 40.0 * np.log(2) / np.log(5)),
        (0.999, 1990.0 + 40.0 * np.log(10) / np.log(5)),
        (0.3, 1500.0 - 400.0 * np.log(0.5 / 0.3) / np.log(0.9 / 0.5)),
    ],
)
def test_the_tail_is_exponential_from_the_two_outermost_levels(q: float, expected: float) -> None:
    assert forecast().quantile(q) == pytest.approx(np.full(30, expected))


def test_the_tail_is_monotone_and_finite_to_the_edges() -> None:
    fc = forecast()
    qs = [1e-9, 0.01, 0.3, 0.5, 0.9, 0.97, 0.99, 0.995, 0.999, 1 - 1e-9]
    values = [float(fc.quantile(q)[0]) for q in qs]
    assert values == sorted(values) and all(np.isfinite(values))
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"quantile: expected a level in \(0, 1\)"):
            fc.quantile(bad)


def test_without_costs_the_fixed_quantile_is_quoted() -> None:
    h = choose(policy(headroomQuantile=0.9), forecast(), WINDOW)
    assert (h.quantile, h.source, h.text) == (0.9, "headroomQuantile", "headroom p90 (headroomQuantile)")
    assert label(0.973) == "q0.973" and label(0.95) == "p95"


@pytest.mark.parametrize(
    ("q", "replicas"),
    [
        # forecast q-quantile = 1000 * (1 + q) req/s at 50 req/s per replica
        (0.5, 30),
        (0.9, 38),
        (0.97, 40),  # 1970 -> interpolated between p95 (1950) and p99 (1990)
        (0.99, 40),
    ],
)
def test_decide_sizes_at_the_newsvendor_quantile_and_says_so(q: float, replicas: int) -> None:
    state = ObservedState(NOW, current_replicas=10, ready_replicas=10, observed_demand=400.0)
    d = decide(policy(costs=costs_for(q)), forecast(), state)
    assert d.desired_replicas == replicas
    assert d.headroom_quantile == pytest.approx(q)
    assert f"newsvendor q{q:.3g} from costs" in d.message
    assert f"forecast {label(q)} peak" in d.message


def test_decide_sizes_above_p99_on_the_tail() -> None:
    """A ratio past the forecast's p99 buys more than p99's replicas (it used to be capped at p99's 40)."""
    state = ObservedState(NOW, current_replicas=10, ready_replicas=10, observed_demand=400.0)
    d = decide(policy(costs=costs_for(0.9999)), forecast(), state)
    # 1990 + 40 ln(100) / ln(5) = 2102 req/s at 50 each
    assert d.headroom_quantile == pytest.approx(0.9999) and d.desired_replicas == 43
    assert "newsvendor q0.9999 from costs" in d.message
    assert "beyond the forecast's highest quantile p99: read on its exponential tail" in d.message


@pytest.mark.parametrize(
    ("costs", "field"),
    [
        ({"unservedRequest": 0, "replicaHour": 1}, "costs.unservedRequest"),
        ({"unservedRequest": 1, "replicaHour": -2}, "costs.replicaHour"),
        ({"unservedRequest": float("nan"), "replicaHour": 1}, "costs.unservedRequest"),
        ({"unservedRequest": float("inf"), "replicaHour": 1}, "costs.unservedRequest"),
        ({"replicaHour": 1}, "costs.unservedRequest"),
        ({"unservedRequest": 1, "replicaHour": 1, "perDay": 3}, "costs.perDay"),
    ],
)
def test_costs_are_validated_naming_the_field(costs: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        policy(costs=costs)
    assert field in str(err.value)


@settings(max_examples=200, deadline=None)
@given(
    cheap=st.floats(1e-9, 1.0),
    factor=st.floats(1.0, 1e6),
    replica_hour=st.floats(0.01, 100.0),
    capacity=st.floats(1.0, 500.0),
    base=st.floats(0.0, 20000.0),
    spread=st.floats(0.0, 2.0),
    observed=st.one_of(st.none(), st.floats(0.0, 20000.0)),
    current=st.integers(0, 400),
)
def test_higher_unserved_cost_never_gives_fewer_replicas(
    cheap: float, factor: float, replica_hour: float, capacity: float, base: float, spread: float,
    observed: float | None, current: int,
) -> None:
    index = pd.date_range(NOW, periods=30, freq="1min")
    levels = (0.5, 0.9, 0.95, 0.99)
    fc = Forecast(index, np.full(30, base), {q: np.full(30, base * (1 + spread * q)) for q in levels})
    state = ObservedState(NOW, current_replicas=current, ready_replicas=current, observed_demand=observed)
    spec = {"capacityPerReplica": capacity, "leadTime": "5m", "maxReplicas": 1000, "minReplicas": 0}
    low = decide(Policy.model_validate({**spec, "costs": {"unservedRequest": cheap, "replicaHour": replica_hour}}),
                 fc, state)
    high = decide(Policy.model_validate({**spec, "costs": {"unservedRequest": cheap * factor,
                                                           "replicaHour": replica_hour}}), fc, state)
    assert high.desired_replicas >= low.desired_replicas
    assert (high.headroom_quantile or 0) >= (low.headroom_quantile or 0)


@pytest.mark.parametrize(
    ("q", "text"),
    [(0.95, "p95"), (0.973, "q0.973"), (0.995, "q0.995"), (0.999, "q0.999"), (0.9995, "q0.9995"),
     (0.9999, "q0.9999"), (0.99999, "q0.99999"), (0.99973, "q0.99973"), (1.0 - 1e-12, "q0.999999999999")],
)
def test_label_past_three_nines_keeps_every_digit_and_is_never_q1(q: float, text: str) -> None:
    """Decision messages and the sweep print the quantile they sized at: q0.9999, not q1 (nor p100)."""
    assert label(q) == text
