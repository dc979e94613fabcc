"""Benchmark: the operator's own CPU per policy in steady cycles, without the Kubernetes API.

``bench_operator_shards.py`` measures wall time beside a real client and the
emulator; on a loaded machine its Pitboss column grows with the load (a cycle
waits for the CPU). This one runs the same Reconciler over in-memory fakes
(``controller.operator.fakes.InMemoryPolicyStore``,
``controller.targets.fake.InMemoryScaleTarget``: no API exists here to
measure) and counts *thread CPU time*, which waiting for a core does not add
to. Every policy forecasts with the calendar model over 14 days of 1-minute
history (fitted in a first cycle, not measured); then ``--cycles`` steady
cycles, every 4th of which updates the models. The trace-replay demand source's
own CPU (its pandas reindex, not part of Pitboss: Prometheus answers in
production) is counted apart by wrapping it, and subtracted, as is the fakes'
time. Goal (issue 14): steady Pitboss time at most 1 ms per policy.

Run: python benchmarks/bench_operator_cpu.py [--policies 200 --cycles 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

GOAL_MS = 1.0


class CountedSource:
    """A DemandSource wrapper that adds the thread CPU time of every call to ``spent``."""

    spent = 0.0

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def history(self, *args: Any) -> Any:
        t0 = time.thread_time()
        try:
            return self.inner.history(*args)
        finally:
            CountedSource.spent += time.thread_time() - t0

    def current(self, *args: Any) -> Any:
        t0 = time.thread_time()
        try:
            return self.inner.current(*args)
        finally:
            CountedSource.spent += time.thread_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=12, help="steady cycles (every 4th updates the models)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the goal says

    from controller.incidents.events import RecordingEventRecorder
    from controller.operator.clock import FakeClock
    from controller.operator.reconcile import Reconciler
    from tests.controller.operator.harness import EVENT_START, TraceDemand, casino_trace, in_memory_fleet

    n = args.policies
    store, targets = in_memory_fleet(n)
    demand = TraceDemand(casino_trace(days=16))
    source = CountedSource(demand.default)
    clock = FakeClock(EVENT_START - timedelta(hours=3, seconds=7))  # three hours before: no pre-scale
    rec = Reconciler(store=store, targets=targets, recorder=RecordingEventRecorder(),
                     demand=lambda _policy, _spec: source, clock=clock)  # type: ignore[arg-type,return-value]
    first = rec.reconcile_all()
    if first.fits != n:
        raise SystemExit(f"the first cycle fitted {first.fits} of {n} policies")
    rows: dict[str, list[tuple[float, float, float]]] = {"update": [], "cached": []}
    for _ in range(args.cycles):
        clock.advance(timedelta(seconds=15))
        spent0, t0 = CountedSource.spent, time.thread_time()
        report = rec.reconcile_all()
        cpu = time.thread_time() - t0
        rows["update" if report.updates else "cached"].append((cpu, CountedSource.spent - spent0, report.api_seconds))

    table = Table(title=f"operator steady cycles, thread CPU per policy ({n} policies, 14 days of 1-minute history, "
                        "in-memory store and targets)")
    for col in ("cycles", "kind", "cycle CPU ms/pol", "demand source ms/pol", "fakes ms/pol (wall)",
                "Pitboss CPU ms/pol", f"goal <= {GOAL_MS:g} ms"):
        table.add_column(col, justify="right")
    every: list[float] = []
    for kind, got in rows.items():
        if not got:
            continue
        cpu = statistics.fmean(r[0] for r in got) * 1000 / n
        src = statistics.fmean(r[1] for r in got) * 1000 / n
        fakes = statistics.fmean(r[2] for r in got) * 1000 / n
        pitboss = [(r[0] - r[1] - r[2]) * 1000 / n for r in got]
        every += pitboss
        table.add_row(str(len(got)), kind, f"{cpu:.3f}", f"{src:.3f}", f"{fakes:.3f}",
                      f"{statistics.fmean(pitboss):.3f}", "")
    mean = statistics.fmean(every)
    table.add_row(str(len(every)), "steady mean", "", "", "", f"{mean:.3f}", "yes" if mean <= GOAL_MS else "NO",
                  style="bold")
    console = Console(width=160)
    console.print(table)
    console.print("Thread CPU time (waiting for a core is not counted); one core; "
                  f"load average {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
