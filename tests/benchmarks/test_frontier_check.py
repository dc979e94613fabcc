"""bench-frontier's check "pitboss's frontier is below the other's at every unserved level", on hand-made frontiers."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from controller.simulate.sweep import SweepPoint, pareto
from tests.conftest import REPO


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_frontier", REPO / "benchmarks" / "bench_frontier.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_frontier"] = module
    spec.loader.exec_module(module)
    return module


def front(policy: str, *points: tuple[float, float]) -> list[SweepPoint]:
    return pareto([SweepPoint(policy, "quantile", i / 10, u, rh, 1) for i, (u, rh) in enumerate(points)])


def test_below_everywhere_passes(bench) -> None:  # type: ignore[no-untyped-def]
    pit = front("pitboss", (0.04, 100), (0.01, 110), (0.0, 130))
    other = front("hpa", (0.10, 105), (0.05, 120), (0.0, 200))
    levels, worst, _, unreached, ok = bench.compare(pit, other)
    assert ok and not unreached and worst is not None and worst < 1
    assert levels == sorted({0.04, 0.01, 0.0, 0.10, 0.05})


def test_cheaper_other_at_a_looser_level_fails(bench) -> None:  # type: ignore[no-untyped-def]
    # HPA at 10% unserved for 95 replica-h: pitboss's cheapest point (4% at 100) costs more there.
    pit = front("pitboss", (0.04, 100), (0.0, 130))
    other = front("hpa", (0.10, 95), (0.0, 200))
    _, worst, where, _, ok = bench.compare(pit, other)
    assert not ok and worst == pytest.approx(100 / 95) and where == "at 10.000%"


def test_a_level_only_the_other_reaches_fails(bench) -> None:  # type: ignore[no-untyped-def]
    pit = front("pitboss", (0.02, 100), (0.001, 120))
    other = front("mstl", (0.03, 110), (0.0, 150))
    _, worst, _, unreached, ok = bench.compare(pit, other)
    assert not ok and unreached == "0.000%" and worst is not None and worst < 1


def test_interpolates_between_frontier_points(bench) -> None:  # type: ignore[no-untyped-def]
    pit = front("pitboss", (0.04, 100), (0.0, 140))
    other = front("gbm", (0.02, 119), (0.0, 150))
    _, worst, where, _, ok = bench.compare(pit, other)
    assert not ok and where == "at 2.000%" and worst == pytest.approx(120 / 119)


def test_the_sweep_reaches_past_three_nines_and_labels_every_digit(bench) -> None:  # type: ignore[no-untyped-def]
    # "Only the other reaches" must be the policy's limit, not the grid's: each 9 is a tenfold dearer
    # unserved request, one the newsvendor rule reads on the forecast's exponential tail.
    assert {0.999, 0.9999, 0.99999} <= set(bench.QUANTILES)
    labels = [SweepPoint("pitboss", "quantile", q, 0.0, 1.0, 1).label for q in (0.95, 0.973, 0.999, 0.9999, 0.99999)]
    assert labels == ["p95", "q0.973", "q0.999", "q0.9999", "q0.99999"]


def sweep(hpa_unserved: float, *runs: tuple[float, float, float]) -> list[SweepPoint]:
    pts = [SweepPoint("hpa", "target", 0.8, hpa_unserved, 100.0, 1), SweepPoint("oracle", "-", None, 0.0, 100.0, 1)]
    pts += [SweepPoint("pitboss", "quantile", q, u, 100 * c, 1) for q, u, c in runs]
    for p in pts:
        p.cost_vs_oracle = p.replica_hours / 100.0
    return pts


@pytest.mark.parametrize(
    ("runs", "want"),
    [
        # (quantile, unserved, cost vs oracle): both goals are <= 0.1x hpa's 1 % and <= 1.15x.
        (((0.9, 0.002, 1.10), (0.95, 0.0008, 1.14), (0.99, 0.0, 1.20)), [0.95]),
        (((0.9, 0.0011, 1.10), (0.95, 0.001, 1.15)), [0.95]),  # the bounds themselves pass
        (((0.5, 0.02, 1.0), (0.99, 0.0, 1.151)), []),
    ],
)
def test_passing_quantiles_meet_both_default_goals(bench, runs, want) -> None:  # type: ignore[no-untyped-def]
    assert bench.passing_quantiles(sweep(0.01, *runs)) == want


def test_no_common_quantile_when_traces_disagree(bench) -> None:  # type: ignore[no-untyped-def]
    assert bench.common_quantiles({"a": [0.8, 0.9], "b": [0.9, 0.99]}) == [0.9]
    assert bench.common_quantiles({"a": [0.7, 0.8], "b": [0.97, 0.99]}) == []
    assert bench.common_quantiles({}) == []
