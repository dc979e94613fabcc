"""Benchmark: the shared design cache's hit rate in the operator's fitting cycles, by byte budget and calendars.

``forecasting.models.shared_design`` keeps the calendar fit's design (~15 MB
at 14 days of 1-minute points) for the fits that share a grid and an event
calendar. This runs the production Reconciler (its fit budget a quarter of
the 15 s sync period, as ``pitboss operator run`` sets it) over in-memory
fakes, every policy on the calendar model over 14 days of 1-minute history,
through the cycles that fit: the first cycles (every policy's first fit,
spread by the budget) and, an hour on, the cycles where every refit comes
due by age. It counts the designs built, shared and not kept per phase for
each byte budget (``--mb``; ``MAX_BYTES`` is 16) and for policies
interleaved over 1 to 3 event calendars (selectors: calendar c's events are
c hours later), and the bytes the cache holds. Steady cycles between them fit nothing (they reuse or
update the models), so they never touch the cache.

Run: python benchmarks/bench_design_cache.py [--policies 200 --mb 16 --calendars 1,2,3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

SYNC = timedelta(seconds=15)


def run(n: int, mb: float, calendars: int) -> dict[str, Any]:
    from controller.incidents.events import RecordingEventRecorder
    from controller.operator.clock import FakeClock
    from controller.operator.reconcile import Reconciler
    from forecasting.models import shared_design
    from tests.controller.operator.harness import EVENT_START, TraceDemand, casino_trace, in_memory_fleet

    cache = shared_design.CACHE
    cache.clear()
    cache.max_bytes = int(mb * 2**20)
    store, targets = in_memory_fleet(n, calendars)  # calendar c: the tournaments c hours later
    demand = TraceDemand(casino_trace(days=16))
    clock = FakeClock(EVENT_START - timedelta(hours=3, seconds=7))
    rec = Reconciler(store=store, targets=targets, recorder=RecordingEventRecorder(),
                     demand=lambda _policy, _spec: demand.default, clock=clock,  # type: ignore[arg-type,return-value]
                     fit_budget=SYNC / 4)
    out: dict[str, Any] = {"bytes": 0}

    def phase(name: str, until_fits: int) -> None:
        built, hits, unkept, fits, cycles, t0 = cache.built, cache.hits, cache.unkept, 0, 0, time.process_time()
        while fits < until_fits and cycles < 400:
            report = rec.reconcile_all()
            fits += report.fits
            cycles += 1
            out["bytes"] = max(out["bytes"], cache.nbytes)
            clock.advance(SYNC)
        out[name] = (cycles, fits, cache.built - built, cache.hits - hits, cache.unkept - unkept,
                     time.process_time() - t0)

    phase("first", n)
    clock.advance(timedelta(hours=1) - SYNC * out["first"][0])  # an hour after the first fits: refits due
    phase("hourly", n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--mb", default="16", help="byte budgets to try, in MiB, comma-separated")
    parser.add_argument("--calendars", default="1,2,3")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    table = Table(title=f"shared design cache over the operator's fitting cycles ({args.policies} policies, "
                        "14 days of 1-minute history, fit budget 3.75 s)")
    for col in ("calendars", "budget MiB", "phase", "cycles", "fits", "designs built", "shared (hits)",
                "not kept", "hit rate", "CPU s", "cache peak MB"):
        table.add_column(col, justify="right")
    for calendars in (int(c) for c in args.calendars.split(",")):
        for mb in (float(m) for m in args.mb.split(",")):
            got = run(args.policies, mb, calendars)
            for name in ("first", "hourly"):
                cycles, fits, built, hits, unkept, cpu = got[name]
                rate = hits / (built + hits) if built + hits else 0.0
                table.add_row(str(calendars), f"{mb:g}", name, str(cycles), str(fits), str(built), str(hits),
                              str(unkept), f"{rate:.0%}", f"{cpu:.1f}",
                              f"{got['bytes'] / 1e6:.1f}" if name == "hourly" else "")
    console = Console(width=160)
    console.print(table)
    console.print(f"CPU time of the process on one core; load average {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
