"""Benchmark: full reconcile cycles for 100 and 1,000 ScalingPolicies against the strict emulator.

Every policy targets its own Deployment; all of them see the same tournament
calendar, and the fake clock crosses the pre-scale moment, so one cycle in
four patches /scale and records an Event for every policy. The official
client talks HTTP to the emulator (tests/kube) in another thread. Time is
split three ways: API (inside the Kubernetes adapters: client, HTTP and the
emulator), demand (in-memory trace replay) and Pitboss (everything else:
validation, forecasting, decide, status building). The first cycle fits a
forecast per policy (the calendar model, 3 days of 1-minute history); when
the 1-minute forecast step moves (every 4th 15 s cycle) the model absorbs the
new point with ``update``; the cycles in between reuse the forecast. Goal:
Pitboss under 10 ms per policy per cycle.

Incidents are wired as ``pitboss operator run`` wires them (SQLite log in a
temp dir, Kubernetes Events on the emulator, delivery on the background
thread); one policy in ten has maxReplicas 6, so its CapacityCeiling incident
fires once the forecast sees the tournament. The ``incidents`` column is the
rules + engine + local-log share of the Pitboss time (delivery runs on its own
thread and is not in it); ``--no-incidents`` runs the same cycles without them.

Run: make bench-operator  (or python benchmarks/bench_operator.py --sizes 100 --cycles 4)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from controller.operator.clock import FakeClock  # noqa: E402
from controller.operator.crds import all_crds  # noqa: E402
from controller.operator.reconcile import CycleReport  # noqa: E402
from tests.controller.operator.harness import (  # noqa: E402
    EVENT_START,
    TraceDemand,
    make_incident_operator,
    make_operator,
    policy_spec,
    tournament_specs,
)
from tests.kube.emulator import EmulatorThread, StrictKubernetesEmulator  # noqa: E402
from tests.kube.fixtures import NAMESPACE, deployment, scaling_policy, traffic_event  # noqa: E402

GOAL_MS = 10.0


def seed(emu: StrictKubernetesEmulator, n: int) -> None:
    """n Deployments and n ScalingPolicies (straight into the store: seeding is not timed)."""
    for i in range(n):
        name = f"svc-{i:04d}"
        emu.put_object(deployment(name, 4, labels={"app": name}), "deployments")
        spec = policy_spec(targetRef={"kind": "Deployment", "name": name}, maxReplicas=6 if i % 10 == 0 else 40)
        emu.put_object(scaling_policy(f"policy-{i:04d}", spec), "scalingpolicies")
    for name, event in tournament_specs():
        emu.put_object(traffic_event(name, event, labels={"service": "slots"}), "trafficevents")


def run_size(n: int, cycles: int, budget: float, progress: Progress,
             incidents: bool = True) -> list[tuple[str, CycleReport]]:
    thread = EmulatorThread()
    emu = thread.start()
    tmp = tempfile.TemporaryDirectory(prefix="bench-operator-")
    op = None
    try:
        for crd in all_crds().values():
            emu.register_crd(crd)
        emu.event_log_size = 100
        for ns in (NAMESPACE, "pitboss-system"):
            emu.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, "namespaces")
        seed(emu, n)
        clock = FakeClock(EVENT_START - timedelta(minutes=10, seconds=30))
        if incidents:
            op = make_incident_operator(thread.url, clock, TraceDemand(), Path(tmp.name) / "incidents.db")
        else:
            op = make_operator(thread.url, clock, TraceDemand(), leader_election=False)
        results: list[tuple[str, CycleReport]] = []
        task = progress.add_task(f"{n} policies", total=cycles)
        started = time.monotonic()
        for _ in range(cycles):
            report = op.loop.step()
            assert report is not None
            errors = [o for o in report.outcomes if o.error]
            if errors:
                raise SystemExit(f"{len(errors)} policies failed, e.g. {errors[0].name}: {errors[0].error}")
            kind = "fit" if report.fits else "update" if report.updates else "cached"
            if any(o.scaled for o in report.outcomes):
                kind += " + scale"
            results.append((kind, report))
            clock.advance(timedelta(seconds=15))
            progress.advance(task)
            if time.monotonic() - started > budget:
                break
        if op.incidents is not None:
            firing = len(op.incidents.engine.active)
            progress.console.print(f"{n} policies: {firing} incidents firing after {len(results)} cycles")
        return results
    finally:
        if op is not None:
            op.close()
        thread.stop()
        tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--cycles", type=int, default=6, help="cycles per size (one forecast step = 4 cycles)")
    parser.add_argument("--budget", type=float, default=180.0, help="seconds per size before stopping early")
    parser.add_argument("--no-incidents", action="store_true", help="run the cycles without the incident engine")
    args = parser.parse_args()
    if any(s < 1 for s in args.sizes) or args.cycles < 1:
        parser.error("--sizes and --cycles must be positive")
    console = Console(width=150)
    rows: list[tuple[int, str, CycleReport]] = []
    with Progress(console=console, transient=True) as progress:
        for n in args.sizes:
            for kind, report in run_size(n, args.cycles, args.budget, progress, incidents=not args.no_incidents):
                rows.append((n, kind, report))

    table = Table(title="pitboss operator: one reconcile cycle (ms per policy)")
    for col in ("policies", "cycle", "total s", "API", "demand", "Pitboss", "incidents", "Pitboss/API",
                f"goal <{GOAL_MS:g}"):
        table.add_column(col, justify="right")
    for n, kind, r in rows:
        per = 1000.0 / n
        pit = r.pitboss_seconds * per
        table.add_row(str(n), kind, f"{r.seconds:.2f}", f"{r.api_seconds * per:.2f}", f"{r.source_seconds * per:.2f}",
                      f"{pit:.2f}", f"{r.incident_seconds * per:.3f}",
                      f"{r.pitboss_seconds / max(r.api_seconds, 1e-9):.2f}x",
                      "yes" if pit < GOAL_MS else "NO")
    for n in args.sizes:
        steady = [r for m, kind, r in rows if m == n and not kind.startswith("fit")]
        if steady:
            per = 1000.0 / n
            pit = statistics.fmean(r.pitboss_seconds for r in steady) * per
            api = statistics.fmean(r.api_seconds for r in steady) * per
            inc = statistics.fmean(r.incident_seconds for r in steady) * per
            table.add_row(str(n), "steady mean (no fit)", "", f"{api:.2f}", "", f"{pit:.2f}", f"{inc:.3f}",
                          f"{pit / max(api, 1e-9):.2f}x", "yes" if pit < GOAL_MS else "NO", style="bold")
    console.print(table)
    for n in args.sizes:
        pit = sum(r.pitboss_seconds for m, _, r in rows if m == n)
        inc = sum(r.incident_seconds for m, _, r in rows if m == n)
        if inc:
            console.print(f"{n} policies: incidents (rules + engine + local log) = {inc / max(pit, 1e-9):.1%} "
                          f"of Pitboss time, {inc / max(sum(r.seconds for m, _, r in rows if m == n), 1e-9):.1%} "
                          "of the whole cycle (same cycles)")
    console.print("API = Kubernetes adapters (official client + loopback HTTP + emulator in this process); "
                  "the baseline for the Pitboss/API ratio is that API time, measured in the same cycles. "
                  "Machine: 2 shared cores; numbers are noisy under load.")


if __name__ == "__main__":
    main()
