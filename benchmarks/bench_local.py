"""bench-local: what the local run (``pitboss demo``) rests on, measured on this machine.

1. Replica capacity knee: one real local replica (admission cap 4, 0.2 s
   awaited service time: 20 requests/s nominal) under the load generator at
   0.5x to 2x its nominal rate; served/s and rejected share, ratio of served
   to nominal (the baseline).
2. Replica start-up, spawn to /readyz 200: one replica alone (the baseline)
   vs three started together (as a scale-up starts them); the lead time is
   derived from this.
3. Control-loop cycle cost in-process (fake target and source, the real
   fitted calendar model): ``decide`` alone (the baseline) vs the forecast
   feed (update + predict) vs a whole cycle with the incident rules.

Run with ``.venv/bin/python benchmarks/bench_local.py`` (``make bench-local`` once the Makefile has it).
Numbers depend on machine load: other processes share the cores.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from controller.core.decide import decide  # noqa: E402
from controller.core.decision import ObservedState  # noqa: E402
from controller.core.policy import Policy  # noqa: E402
from controller.incidents.engine import IncidentEngine  # noqa: E402
from controller.local.loadgen import LoadGenerator, SpinWorkload  # noqa: E402
from controller.local.loop import ControlLoop, FakeClock, StepFeed  # noqa: E402
from controller.local.recorder import RunRecord  # noqa: E402
from controller.local.scenario import STEP, build_scenario  # noqa: E402
from controller.sources.fakes import FakeDemandSource  # noqa: E402
from controller.targets.fake import InMemoryScaleTarget  # noqa: E402
from controller.targets.local import DEFAULT_KEY, LocalConfig, LocalProcessTarget  # noqa: E402
from forecasting import registry  # noqa: E402

console = Console(width=140)


def knee(work: Path) -> Table:
    cfg = LocalConfig(max_in_flight=4, service_time=0.2)
    nominal = cfg.capacity or 0.0
    table = Table(title=f"Replica capacity knee (one replica, {cfg.max_in_flight} in flight x {cfg.service_time}s ="
                        f" {nominal:g} req/s nominal; 4 s per rate)")
    for col in ("offered req/s", "x nominal", "served req/s", "rejected share", "mean latency ms",
                "served / nominal"):
        table.add_column(col, justify="right")
    with LocalProcessTarget(work / "knee", cfg) as target:
        target.set_replicas(target.key, 1)
        target.wait_ready(1, timeout=60)
        workload = SpinWorkload(players=4)
        workload.setup(target.ready_urls()[0])
        for factor in (0.5, 0.9, 1.0, 1.25, 2.0):
            rate = nominal * factor
            gen = LoadGenerator(lambda _, r=rate: r, target.ready_urls, workload, max_requests=10_000,
                                max_seconds=30)
            gen.start()
            time.sleep(4.0)
            gen.stop()
            t = gen.snapshot()
            served = t.served / 4.0
            table.add_row(f"{rate:.0f}", f"{factor:g}", f"{served:.1f}", f"{t.rejected / max(t.sent, 1):.1%}",
                          f"{t.latency_sum / max(t.served, 1) * 1000:.0f}", f"{served / nominal:.2f}")
    return table


def startup(work: Path) -> Table:
    table = Table(title="Replica start-up, spawn to /readyz 200 (seconds)")
    for col in ("case", "samples", "min", "mean", "max", "mean vs alone"):
        table.add_column(col, justify="right")
    alone: list[float] = []
    together: list[float] = []
    with LocalProcessTarget(work / "startup", LocalConfig()) as target:
        for _ in range(2):  # the first one also creates the database: measure a warm one too
            target.set_replicas(target.key, 1)
            target.wait_ready(1, timeout=60)
            alone.append(target.startup_seconds[-1])
            target.set_replicas(target.key, 0)
            time.sleep(1.0)
        target.set_replicas(target.key, 3)
        target.wait_ready(3, timeout=60)
        together = target.startup_seconds[-3:]
    base = statistics.mean(alone)
    for name, xs in (("one alone (baseline)", alone), ("three together", together)):
        table.add_row(name, str(len(xs)), f"{min(xs):.2f}", f"{statistics.mean(xs):.2f}", f"{max(xs):.2f}",
                      f"{statistics.mean(xs) / base:.2f}x")
    return table


def cycle_cost() -> Table:
    scenario = build_scenario(90)
    model = registry.create("calendar").fit(scenario.history, scenario.events)
    policy = Policy(capacity_per_replica=15, min_replicas=1, max_replicas=4, lead_time=timedelta(minutes=5),
                    sync_period=timedelta(minutes=1))
    plan = model.predict(100, scenario.events)
    feed = StepFeed(model, scenario.events, scenario.history.index[-1], STEP, plan, horizon_steps=9)
    target = InMemoryScaleTarget()
    target.add(DEFAULT_KEY, 1)
    loop = ControlLoop(policy=policy, feed=feed, target=target, key=DEFAULT_KEY, source=FakeDemandSource(value=10.0),
                       record=RunRecord(meta={"capacity_per_replica": 15}), live_start=scenario.start, speed=60,
                       events=scenario.events, incidents=IncidentEngine(), clock=FakeClock())
    n = 80
    state = ObservedState(now=scenario.start.to_pydatetime(), current_replicas=1, ready_replicas=1,
                          observed_demand=10.0)
    began = time.perf_counter()
    for _ in range(n):
        decide(policy, plan, state)
    t_decide = (time.perf_counter() - began) / n
    # the feed: one completed step absorbed + a new forecast per call
    feed2 = StepFeed(registry.create("calendar").fit(scenario.history, scenario.events), scenario.events,
                         scenario.history.index[-1], STEP, plan, horizon_steps=9)
    began = time.perf_counter()
    for i in range(n):
        feed2.at(scenario.start + (i + 1) * STEP + pd.Timedelta(seconds=1), 10.0)
    t_feed = (time.perf_counter() - began) / n
    began = time.perf_counter()
    for _ in range(n):
        loop.cycle()
        loop.clock.sleep(1.0)
    t_cycle = (time.perf_counter() - began) / n
    table = Table(title=f"Control-loop cost per cycle, in-process ({n} cycles, 1-minute steps)")
    for col in ("part", "ms per call", "vs decide"):
        table.add_column(col, justify="right")
    for name, t in (("decide (baseline)", t_decide), ("forecast feed: update + predict", t_feed),
                    ("whole cycle (observe, feed, decide, act, rules, record)", t_cycle)):
        table.add_row(name, f"{t * 1000:.2f}", f"{t / t_decide:.1f}x")
    return table


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pitboss-bench-local-") as tmp:
        work = Path(tmp)
        console.print(knee(work))
        console.print(startup(work))
    console.print(cycle_cost())
    console.print("[dim]Machine load matters: other processes share the cores; compare ratios, not absolutes.[/]")


if __name__ == "__main__":
    main()
