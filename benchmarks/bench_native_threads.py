"""Benchmark: one calendar fit with numpy's BLAS pool as the library sizes it vs capped at one thread.

``pitboss operator run`` caps the BLAS/OpenMP pools at ``--native-threads``
(default 1, ``controller.operator.app.limit_native_threads``): OpenBLAS sizes
its pool by the node's cores, not the pod's CPU limit, and the operator's
work is many small fits whose solves do not gain from more threads but wait on
them. This measures the wall time of one calendar fit over 14 days of
1-minute history (the issue-14 setting; the design built, as for the
first policy on a grid) both ways, alternating in one
process, so the ratio is against a baseline run beside it: first on the
machine as it is, then with busy neighbours (one spinning process on every
core but one, as other pods on a node): a pool that spans the node's cores
then waits for the busy ones.

Run: python benchmarks/bench_native_threads.py [--rounds 5 --fits 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.synchronize
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from forecasting import registry  # noqa: E402
from forecasting.models import shared_design  # noqa: E402


def _history(days: int) -> pd.Series:
    idx = pd.date_range("2026-01-05", periods=days * 1440, freq="1min", tz="UTC")
    t = np.arange(len(idx))
    y = 100 + 30 * np.sin(2 * np.pi * t / 1440) + 10 * np.sin(2 * np.pi * t / (7 * 1440))
    return pd.Series(y + np.random.default_rng(0).normal(0, 5, len(idx)), index=idx)


def _fit_seconds(hist: pd.Series) -> float:
    model = registry.create("calendar")
    t0 = time.perf_counter()
    with shared_design.disabled():  # a policy's first fit on its grid: the design is built, not shared
        model.fit(hist, [])
    return time.perf_counter() - t0


def _spin(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        sum(range(10_000))


def _round_rows(hist: pd.Series, rounds: int, fits: int, table: Table, label: str) -> list[float]:
    ratios = []
    for r in range(1, rounds + 1):
        default = statistics.median(_fit_seconds(hist) for _ in range(fits))
        with threadpool_limits(limits=1):
            one = statistics.median(_fit_seconds(hist) for _ in range(fits))
        ratios.append(default / one)
        table.add_row(label, str(r), f"{default * 1000:.0f}", f"{one * 1000:.0f}", f"{default / one:.2f}x")
    table.add_row(label, "median", "", "", f"{statistics.median(ratios):.2f}x")
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fits", type=int, default=3, help="fits per setting per round (the median is kept)")
    ap.add_argument("--days", type=int, default=14)
    args = ap.parse_args()
    hist = _history(args.days)
    pools = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    _fit_seconds(hist)  # warm-up: imports and first-touch allocations
    table = Table(title=f"one calendar fit, {args.days} d of 1-min history ({os.cpu_count()} cores, pools {pools})")
    for col in ("neighbours", "round", "library default ms", "1 thread ms", "default / 1 thread"):
        table.add_column(col, justify="right")
    _round_rows(hist, args.rounds, args.fits, table, "as is")
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                for _ in range(max(1, (os.cpu_count() or 2) - 1))]
    for p in spinners:
        p.start()
    try:
        _round_rows(hist, args.rounds, args.fits, table, f"{len(spinners)} busy")
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
