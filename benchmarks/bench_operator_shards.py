"""Benchmark: the operator at scale, sharded: 14 days of 1-minute history, one replica vs three shards.

Every policy forecasts with the calendar model over 14 days of 1-minute
history (20,160 points). Fits are spread over cycles (what ``pitboss operator
run`` wires: a fit runs while the cycle stays within half the sync period,
``controller.cycle.deadline``; the other policies decide meanwhile), so the first cycles fit part of the policies each
("fitting" rows); once every policy is fitted, ``--cycles`` steady cycles
reuse the models: each policy takes its new 1-minute point in its phase of
the step's four 15 s cycles, so every steady cycle updates a quarter of them
(``--no-spread-updates``: all of them in every 4th cycle, the others reuse).
The emulator (tests/kube) runs in a child process, pinned to the second core
when there is one, so the bench process (pinned to the first) holds only the
operator: its RSS growth divided by the policies is the memory per policy. Cases, each for every ``--sizes`` entry:

* ``1 shard``: one operator reconciles every policy (default for 1,000;
  ``--single-10k`` adds it at 10,000, a first cycle of several minutes).
* ``3 shards``: three operators (own client, own Reconciler, a
  ``ShardedElector`` on the shard Leases, as ``--shards 3`` wires them), run
  one after the other on one core and one fake clock; each caches every policy
  (the API has no server-side shard filter) and reconciles its third. A row per
  shard and cycle; production runs them in three pods at once.

Each operator reads through its informers' caches, as ``pitboss operator run``
does (``controller.operator.cached``: one LIST and one watch each of policies,
events, Deployments and StatefulSets, waited for before the first cycle), so a
cycle's API time is its writes; ``--no-cache`` reads the API directly every
cycle (a LIST, a GET of /scale and /status per policy), as before.
* ``takeover``: three real ``pitboss operator run --shards 3`` processes with
  the default 15 s lease and sync period on the same policies (no Prometheus:
  they hold at minReplicas, so no fits). The holder of shard 0 is killed
  (SIGKILL: no release), its policies' minReplicas raised at once, and a
  watch times, from the kill, when its Lease expired (renewTime +
  leaseDurationSeconds) and when the first and the last of its policies were
  decided again by another replica (status observedGeneration). First minus
  expiry is the takeover; last minus first is the taking replica's cycle.

API = the Kubernetes adapters (official client, loopback HTTP, emulator): the
baseline column, measured in the same cycles. The writes run ``--write-concurrency``
policies at once (default 8, as ``pitboss operator run``; 1: one after
another): API is then the sum of every thread's calls, more than their share
of the cycle's wall clock, and Pitboss the threads' busy time less it. Every cycle's line (and the
last table) also gives CPU seconds, read from /proc around the cycle: the operator process's, split
into the cycle's thread, the write pool's threads and the rest (mostly the informers' watches), and
the emulator process's; with the time the cycle's thread waited for the writers and spent in demand
reads (and how many of those read a policy's whole window, how many only its tail:
``controller.operator.history``): whether a cycle is the operator's CPU, the emulator's or waiting.
Goals (issue 14): at 1,000 policies no cycle (fits included) over half the sync period; steady Pitboss
time at most 1 ms per policy; at 10,000 over 3 shards every shard's cycle
within the sync period; takeover (after expiry) within the lease duration.

Run: make bench-operator (this runs after bench_operator.py; 1,000 and 10,000 policies, the
10,000 over 3 shards only: ~25 min on 2 loaded cores), PITBOSS_BENCH_QUICK=1 make bench-operator
(1,000 only), or python benchmarks/bench_operator_shards.py --sizes 1000 --no-takeover.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

SYNC_S = 15.0
LEASE_S = 15.0
GOAL_STEADY_MS = 1.0
HISTORY = {"model": "calendar", "step": "1m", "history": "14d", "horizon": "3h"}


# ---- the emulator, in a child process ---------------------------------------------
def _serve(n: int, conn: Any, cpu: int | None) -> None:
    """Child: a seeded emulator; sends its URL, serves until told to stop."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    from controller.operator.crds import all_crds
    from tests.controller.operator.harness import policy_spec, tournament_specs
    from tests.kube.emulator import EmulatorThread
    from tests.kube.fixtures import NAMESPACE, deployment, scaling_policy, traffic_event

    thread = EmulatorThread()
    emu = thread.start()
    for crd in all_crds().values():
        emu.register_crd(crd)
    emu.event_log_size = 2000  # per resource: a watch further behind than this relists (410)
    for ns in (NAMESPACE, "pitboss-system"):
        emu.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, "namespaces")
    for i in range(n):
        name = f"svc-{i:05d}"
        emu.put_object(deployment(name, 4, labels={"app": name}), "deployments")
        spec = policy_spec(targetRef={"kind": "Deployment", "name": name}, forecast=HISTORY)
        emu.put_object(scaling_policy(f"policy-{i:05d}", spec), "scalingpolicies")
    for name, event in tournament_specs():
        emu.put_object(traffic_event(name, event, labels={"service": "slots"}), "trafficevents")
    conn.send(thread.url)
    conn.recv()
    thread.stop()


class Emulator:
    """The child process serving a seeded emulator (``with Emulator(n, cpu) as url``)."""

    def __init__(self, n: int, cpu: int | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(n, child, cpu), daemon=True)

    def __enter__(self) -> str:
        self.proc.start()
        if not self.conn.poll(600):
            raise SystemExit("the emulator did not start")
        return str(self.conn.recv())

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        self.conn.send("stop")
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(stat_path: str) -> float:
    """utime + stime of a process or thread, seconds (/proc/.../stat; a 10 ms tick)."""
    try:
        with open(stat_path) as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:  # a thread that ended
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_split() -> dict[str, float]:
    """This process's CPU seconds so far by thread group: the cycle's (main) thread, the write pool's, the rest.

    "rest" is mostly the informers' watch threads decoding events (every operator in this process
    caches every policy). Threads that ended are missing, so read it around a cycle, not across cases.
    """
    out = {"cycle": 0.0, "writers": 0.0, "rest": 0.0}
    main = threading.main_thread().native_id
    for t in threading.enumerate():
        if t.native_id is None:
            continue
        group = "cycle" if t.native_id == main else "writers" if t.name.startswith("pitboss-write") else "rest"
        out[group] += _proc_cpu(f"/proc/self/task/{t.native_id}/stat")
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@dataclass
class Row:
    case: str
    n: int
    shard: str
    kind: str
    seconds: float
    api: float
    pitboss: float
    policies: int
    fitting: bool = False  # a cycle before every policy had its first fit
    status: tuple[int, int] = (0, 0)  # /status PATCHes sent, held back (volatile-only: --status-max-age)
    cpu: dict[str, float] = field(default_factory=dict)  # operator process CPU s in the cycle, by thread group
    emu_cpu: float = 0.0  # the emulator process's CPU s in the cycle
    cycle: int = 0

    @property
    def op_cpu(self) -> float:
        return sum(self.cpu.values())


@dataclass
class CaseResult:
    rows: list[Row] = field(default_factory=list)
    rss_per_policy_kb: float = 0.0


MAX_FIT_CYCLES = 400  # a bound: the spread fits of 10,000 policies take ~100 cycles

# ---- cycles ------------------------------------------------------------------------
def run_cycles(url: str, n: int, shards: int, cycles: int, console: Console,
               fit_budget: float | None = None, cache: bool = True, spread: bool = True,
               write_concurrency: int = 8, emu_pid: int | None = None) -> CaseResult:
    from controller.operator.app import build_operator
    from controller.operator.clock import FakeClock
    from controller.operator.shards import ShardedElector
    from tests.controller.operator.harness import EVENT_START, TraceDemand, casino_trace
    from tests.kube.fixtures import SYSTEM_NAMESPACE, api_client_for

    # One fake second apart per case: Event names carry the fake time, and the cases share the emulator.
    clock = FakeClock(EVENT_START - timedelta(minutes=10, seconds=30) + timedelta(seconds=shards - 1))
    demand = TraceDemand(casino_trace(days=16))
    ops = [build_operator(api_client_for(url, write_concurrency=write_concurrency), namespace=None, demand=demand,
                          clock=clock,
                          leader_election=shards > 1, lease_namespace=SYSTEM_NAMESPACE,
                          lease_duration=timedelta(minutes=1),  # outlives the 15 s fake-clock steps
                          identity=f"op-{k}", shards=shards,
                          # None: production's deadline (half the sync period); 0: no budget (fit all at once)
                          fit_budget=None if fit_budget is None else timedelta(seconds=fit_budget or 1e9),
                          cache=cache,  # as `pitboss operator run`: the informers' caches (--no-cache: direct reads)
                          spread_updates=spread,  # each step's updates spread over its cycles (as the operator)
                          write_concurrency=write_concurrency)  # policies written at once (as --write-concurrency)
           for k in range(shards)]
    t0 = time.perf_counter()
    for op in ops:
        if op.informers is not None and not op.informers.wait_synced(600):
            raise SystemExit(f"op {op.loop.identity}: the informers did not sync within 600 s")
    if cache:
        console.print(f"  informers of {shards} operator(s) synced in {time.perf_counter() - t0:.1f}s", style="dim")
    result = CaseResult()
    case = f"{shards} shard" + ("s" if shards > 1 else "")
    rss0 = _rss_mb()
    steady, c = 0, 0
    while steady < cycles:
        if c >= MAX_FIT_CYCLES:
            raise SystemExit(f"{case}: still fitting after {c} cycles")
        fitted_now = False
        for k, op in enumerate(ops):
            cpu0, emu0 = cpu_split(), _proc_cpu(f"/proc/{emu_pid}/stat") if emu_pid else 0.0
            reads0 = op.reconciler.histories.reads
            report = op.loop.step()
            cpu1, emu1 = cpu_split(), _proc_cpu(f"/proc/{emu_pid}/stat") if emu_pid else 0.0
            reads = tuple(b - a for a, b in zip(reads0, op.reconciler.histories.reads, strict=True))
            cpu = {g: cpu1[g] - cpu0[g] for g in cpu1}
            if report is None:
                raise SystemExit(f"{case}: op-{k} holds no shard")
            errors = [o for o in report.outcomes if o.error]
            if errors:
                raise SystemExit(f"{len(errors)} policies failed, e.g. {errors[0].name}: {errors[0].error}")
            fitted_now = fitted_now or bool(report.fits or report.deferred_fits)
            kind = (f"first ({report.fits} fits)" if c == 0 else f"fitting ({report.fits} fits)" if report.fits
                    else "update" if report.updates else "cached")
            if any(o.scaled for o in report.outcomes):
                kind += " + scale"  # the fake clock crosses the tournament's pre-scale moment
            held = op.elector.held() if isinstance(op.elector, ShardedElector) else ()
            shard = ",".join(str(s) for s in sorted(held)) or "all"
            result.rows.append(Row(case, n, shard, kind, report.seconds, report.api_seconds,
                                   report.pitboss_seconds, len(report.outcomes), bool(report.fits),
                                   (getattr(report, "status_writes", -1), getattr(report, "status_skipped", -1)),
                                   cpu=cpu, emu_cpu=emu1 - emu0, cycle=c))
            console.print(f"  {case} {n}: shard {shard} cycle {c} ({kind}): {len(report.outcomes)} policies "
                          f"{report.seconds:.1f}s (API {report.api_seconds:.1f}s; status written/held "
                          f"{result.rows[-1].status[0]}/{result.rows[-1].status[1]}; CPU s: operator "
                          f"{sum(cpu.values()):.1f} = cycle thread {cpu['cycle']:.1f} + writers {cpu['writers']:.1f}"
                          f" + rest {cpu['rest']:.1f}; emulator {emu1 - emu0:.1f}; the cycle thread waited "
                          f"{report.wait_seconds:.1f}s for the writers, {report.source_seconds:.1f}s in demand reads: "
                          f"{reads[0]} full, {reads[1]} tail)",
                          style="dim")
        clock.advance(timedelta(seconds=15))
        steady += 0 if fitted_now else 1
        c += 1
    covered = sum(r.policies for r in result.rows[:shards])
    if covered != n:
        raise SystemExit(f"{case}: the shards covered {covered} of {n} policies")
    result.rss_per_policy_kb = (_rss_mb() - rss0) * 1000 / n
    for op in ops:
        if op.elector is not None:
            op.elector.release()  # the takeover case's processes start on free Leases
        if op.informers is not None:
            relists = sum(i.relists for i in op.informers.all())
            console.print(f"  {op.loop.identity}: {relists} relist(s)", style="dim")
        op.close()  # stops the informers
        op.api_client.close()
    return result


# ---- takeover ----------------------------------------------------------------------
@dataclass
class Takeover:
    moved: int  # policies of the killed replica's shards
    expires_in: float  # kill -> its Lease's renewTime + leaseDurationSeconds
    first: float  # kill -> the first of them decided again by another replica
    last: float  # kill -> the last of them


def run_takeover(url: str, n: int, console: Console, write_concurrency: int = 8) -> Takeover:
    """The killed replica's Lease expiry and its policies decided again, with three real processes."""
    from kubernetes import client, watch

    from controller.operator.shards import shard_lease_name, shard_of
    from tests.harness import stop_all
    from tests.kube.fixtures import NAMESPACE, SYSTEM_NAMESPACE, api_client_for, write_kubeconfig

    api = api_client_for(url)
    custom = client.CustomObjectsApi(api)
    leases = client.CoordinationV1Api(api)
    tmp = tempfile.TemporaryDirectory(prefix="bench-shards-")
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    kube = write_kubeconfig(Path(tmp.name), url)

    def holders() -> dict[int, tuple[str, datetime | None]]:
        out: dict[int, tuple[str, datetime | None]] = {}
        for i in range(3):
            try:
                spec = leases.read_namespaced_lease(shard_lease_name("pitboss-operator", i, 3), SYSTEM_NAMESPACE).spec
                out[i] = (spec.holder_identity or "", spec.renew_time)
            except client.ApiException:
                out[i] = ("", None)
        return out

    def policies() -> list[dict[str, Any]]:
        items = custom.list_namespaced_custom_object("pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies")["items"]
        return list(items)

    try:
        for name in ("op-a", "op-b", "op-c"):
            procs[name] = subprocess.Popen(
                [str(Path(sys.executable).parent / "pitboss"), "operator", "run", "--kubeconfig", str(kube),
                 "--lease-namespace", SYSTEM_NAMESPACE, "--identity", name, "--shards", "3",
                 "--write-concurrency", str(write_concurrency),
                 "--incidents-db", str(Path(tmp.name) / f"{name}.db")],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while True:
            items = policies()
            held = holders()
            if all(h in procs for h, _ in held.values()) and all(
                    (p.get("status") or {}).get("observedGeneration") == 1 for p in items):
                break
            if time.monotonic() > deadline:
                raise SystemExit("takeover: the replicas did not decide every policy within 300 s")
            time.sleep(1.0)
        victim = held[0][0]
        lost = {i for i, (h, _) in held.items() if h == victim}
        theirs = [p["metadata"]["name"] for p in items if shard_of(p["metadata"]["uid"], 3) in lost]
        wanted = set(theirs)
        decided: dict[str, float] = {}  # policy -> monotonic time its status showed generation 2
        all_done = threading.Event()
        rv = custom.list_namespaced_custom_object("pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies",
                                                  limit=1)["metadata"]["resourceVersion"]

        def follow() -> None:  # a watch, not polling: the emulator is busy enough
            w = watch.Watch()
            for event in w.stream(custom.list_namespaced_custom_object, "pitboss.dev", "v1alpha1", NAMESPACE,
                                  "scalingpolicies", resource_version=rv, timeout_seconds=150):
                obj = event.get("raw_object") or {}
                name = obj.get("metadata", {}).get("name")
                if name in wanted and name not in decided and (obj.get("status") or {}).get("observedGeneration") == 2:
                    decided[name] = time.monotonic()
                    if len(decided) == len(wanted):
                        all_done.set()
                        w.stop()

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        procs[victim].send_signal(signal.SIGKILL)
        killed_wall, killed = datetime.now(UTC), time.monotonic()
        procs[victim].wait(10)
        expiry = max(renew for i, (_, renew) in holders().items() if i in lost and renew is not None)
        expires_in = (expiry - killed_wall).total_seconds() + LEASE_S
        for name in theirs:
            custom.patch_namespaced_custom_object("pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", name,
                                                  {"spec": {"minReplicas": 3}})
        if not all_done.wait(140):
            raise SystemExit(f"takeover: {len(wanted) - len(decided)} of the dead replica's policies were not "
                             "decided again within 140 s")
        first, last = min(decided.values()) - killed, max(decided.values()) - killed
        console.print(f"  takeover: {victim} held shard(s) {sorted(lost)} ({len(theirs)} policies); Lease expired "
                      f"{expires_in:.1f}s after the kill; decided again {first:.1f}s (first) to {last:.1f}s (last) "
                      "after the kill", style="dim")
        return Takeover(len(theirs), expires_in, first, last)
    finally:
        stop_all(procs.values())
        api.close()
        tmp.cleanup()


# ---- report ------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The two sizes by default (10,000 over 3 shards: ~20 min on 2 loaded cores);
    # PITBOSS_BENCH_QUICK=1 (or --sizes 1000) runs 1,000 only.
    default_sizes = [1000] if os.environ.get("PITBOSS_BENCH_QUICK") else [1000, 10000]
    parser.add_argument("--sizes", type=int, nargs="+", default=default_sizes)
    parser.add_argument("--cycles", type=int, default=4,
                        help="steady cycles per case, after every policy is fitted (every 4th updates)")
    parser.add_argument("--single-10k", action="store_true", help="also run one replica over 10,000 policies")
    parser.add_argument("--no-takeover", action="store_true", help="skip the three-process takeover case")
    parser.add_argument("--takeover-only", action="store_true",
                        help="only the takeover case (at the smallest of --sizes), no cycle cases")
    parser.add_argument("--no-cache", action="store_true",
                        help="read the API directly every cycle (LIST, GET /scale per policy), as before the informers")
    parser.add_argument("--no-spread-updates", action="store_true",
                        help="every policy updates in the first cycle of a step, as `pitboss operator run"
                             " --no-spread-updates` (default: each in its phase of the step's cycles)")
    parser.add_argument("--write-concurrency", type=int, default=8,
                        help="policies whose writes run at once, as `pitboss operator run --write-concurrency`"
                             " (1: one after another, as before)")
    parser.add_argument("--fit-budget", type=float, default=None,
                        help="seconds of fitting per cycle (default: fit while the cycle stays within half the sync"
                             " period, as `pitboss operator run`; 0: no budget, the first cycle fits every policy)")
    args = parser.parse_args()
    if any(s < 3 for s in args.sizes) or args.cycles < 1:
        parser.error("--sizes must be at least 3 and --cycles at least 1")
    if args.takeover_only and args.no_takeover:
        parser.error("--takeover-only and --no-takeover exclude each other")
    if not 1 <= args.write_concurrency <= 64:
        parser.error("--write-concurrency must be 1..64")
    console = Console(width=160)
    cpus = sorted(os.sched_getaffinity(0))
    emu_cpu = cpus[1] if len(cpus) > 1 else None
    os.sched_setaffinity(0, {cpus[0]})  # the operator on one core, the emulator on another
    results: list[CaseResult] = []
    takeovers: list[tuple[int, Takeover]] = []
    for n in args.sizes:
        emulator = Emulator(n, emu_cpu)
        with emulator as url:
            cases = [] if args.takeover_only else [1, 3] if n <= 1000 or args.single_10k else [3]
            for shards in cases:
                results.append(run_cycles(url, n, shards, args.cycles, console, args.fit_budget, not args.no_cache,
                                          not args.no_spread_updates, args.write_concurrency, emulator.pid))
            if not args.no_takeover and n == min(args.sizes):
                os.sched_setaffinity(0, set(cpus))  # three processes of their own
                takeovers.append((n, run_takeover(url, n, console, args.write_concurrency)))
                os.sched_setaffinity(0, {cpus[0]})

    table = Table(title="pitboss operator at scale: 14 days of 1-minute history per policy (calendar model)")
    for col in ("policies", "case", "shard", "cycle", "policies in cycle", "cycle s", "API ms/pol",
                "Pitboss ms/pol", "Pitboss/API", "KB/policy (RSS)", "goal"):
        table.add_column(col, justify="right")
    for res in results:
        by_shard: dict[str, list[Row]] = {}
        for r in res.rows:
            by_shard.setdefault(r.shard, []).append(r)
        for shard, rows in by_shard.items():
            first, fitting = rows[0], [r for r in rows[1:] if r.fitting]
            steady = [r for r in rows[1:] if not r.fitting]
            n, case = first.n, first.case
            if case == "1 shard":
                goal = f"<= {SYNC_S / 2:g}s: " + ("yes" if max(r.seconds for r in rows) <= SYNC_S / 2 else "NO")
            else:
                goal = f"<= {SYNC_S:g}s: " + ("yes" if max(r.seconds for r in rows) <= SYNC_S else "NO")
            table.add_row(str(n), case, shard, first.kind, str(first.policies), f"{first.seconds:.2f}",
                          f"{first.api * 1000 / first.policies:.2f}", f"{first.pitboss * 1000 / first.policies:.2f}",
                          f"{first.pitboss / max(first.api, 1e-9):.1f}x", "", goal if shard in ("all", "0") else "")
            if fitting:
                label = f"then {len(fitting)} fitting (max {max(r.seconds for r in fitting):.2f}s)"
                table.add_row(str(n), case, shard, label,
                              str(fitting[0].policies), f"{statistics.fmean(r.seconds for r in fitting):.2f}",
                              f"{statistics.fmean(r.api for r in fitting) * 1000 / fitting[0].policies:.2f}",
                              f"{statistics.fmean(r.pitboss for r in fitting) * 1000 / fitting[0].policies:.2f}",
                              "", "", "")
            pol = statistics.fmean(r.policies for r in steady)
            api = statistics.fmean(r.api for r in steady) * 1000 / pol
            pit = statistics.fmean(r.pitboss for r in steady) * 1000 / pol
            worst = max(r.seconds for r in steady)
            table.add_row(str(n), case, shard, f"steady mean of {len(steady)} (max {worst:.2f}s)",
                          f"{pol:.0f}", f"{statistics.fmean(r.seconds for r in steady):.2f}", f"{api:.2f}",
                          f"{pit:.2f}", f"{pit / max(api, 1e-9):.2f}x",
                          f"{res.rss_per_policy_kb:.0f}" if shard in ("all", "0") else "",
                          f"<= {GOAL_STEADY_MS:g} ms: " + ("yes" if pit <= GOAL_STEADY_MS else "NO"), style="bold")
            for kind in ("update", "cached"):  # the steady mean's two kinds of cycle, apart
                some = [r for r in steady if r.kind.startswith(kind)]
                if some and len(some) < len(steady):
                    table.add_row(str(n), case, shard, f"  of which {len(some)} {kind}", f"{pol:.0f}",
                                  f"{statistics.fmean(r.seconds for r in some):.2f}",
                                  f"{statistics.fmean(r.api for r in some) * 1000 / pol:.2f}",
                                  f"{statistics.fmean(r.pitboss for r in some) * 1000 / pol:.2f}", "", "", "",
                                  style="dim")
    if results:
        console.print(table)
        for res in results:  # /status PATCHes sent / held back, per shard: first cycle, fitting, steady
            for shard in dict.fromkeys(r.shard for r in res.rows):
                rows = [r for r in res.rows if r.shard == shard]
                part = {"first": rows[:1], "fitting": [r for r in rows[1:] if r.fitting],
                        "steady": [r for r in rows[1:] if not r.fitting]}
                console.print(f"{rows[0].n} {rows[0].case} shard {shard}: status written/held " + ", ".join(
                    f"{k} {sum(r.status[0] for r in v)}/{sum(r.status[1] for r in v)}" for k, v in part.items()))
        cycles = Table(title="every cycle after the first, per shard: wall clock, API and CPU seconds (operator "
                             "process: cycle thread + write pool + the rest, mostly informers; emulator process)")
        for col in ("policies", "case", "shard", "cycle", "kind", "cycle s", "API s", "operator CPU s",
                    "cycle thread", "writers", "rest", "emulator CPU s"):
            cycles.add_column(col, justify="right")
        for res in results:
            for row in res.rows:
                if row.cycle == 0:
                    continue
                cycles.add_row(str(row.n), row.case, row.shard, str(row.cycle), row.kind, f"{row.seconds:.2f}",
                               f"{row.api:.1f}", f"{row.op_cpu:.2f}", f"{row.cpu.get('cycle', 0):.2f}",
                               f"{row.cpu.get('writers', 0):.2f}", f"{row.cpu.get('rest', 0):.2f}",
                               f"{row.emu_cpu:.2f}")
        console.print(cycles)
    if takeovers:
        t = Table(title=f"shard takeover: 3 x `pitboss operator run --shards 3`, lease {LEASE_S:g}s, sync {SYNC_S:g}s, "
                        "kill -9 the holder of shard 0 (seconds after the kill)")
        for col in ("policies", "policies moved", "Lease expired s", "first decided again s",
                    "last decided again s", f"goal: first <= expiry + {LEASE_S:g}s"):
            t.add_column(col, justify="right")
        for n, r in takeovers:
            t.add_row(str(n), str(r.moved), f"{r.expires_in:.1f}", f"{r.first:.1f}", f"{r.last:.1f}",
                      "yes" if r.first - r.expires_in <= LEASE_S else "NO")
        console.print(t)
    console.print("API = Kubernetes adapters (official client + loopback HTTP + the emulator in its own process); "
                  "the Pitboss/API ratio's baseline, measured in the same cycles. KB/policy = the bench process's "
                  "RSS growth over the case / policies (all shards' operators for '3 shards'). "
                  "Operator pinned to one core, emulator to another; 2 shared cores, numbers are noisy under load "
                  f"(load average at the end: {os.getloadavg()[0]:.1f}).")


if __name__ == "__main__":
    main()
