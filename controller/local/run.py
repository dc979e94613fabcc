"""The full local run on embedded defaults: what ``pitboss demo`` (``make demo``) executes.

Called by ``cli.demo_cmd`` and the end-to-end tests. In order:

1. start two local casino processes together (``LocalProcessTarget``) and,
   meanwhile, build the scenario (``controller.local.scenario``) and fit the
   ``calendar`` forecaster on its history;
2. measure replica start-up (spawn to ``/readyz`` 200, the slower of the two),
   set the policy's lead time to ``startup_factor`` x that + ``startup_margin``
   on the simulated clock (lengthened during the run if a later start-up is
   slower), and scale back to ``min_replicas``;
3. register the demo players, start the load generator replaying the live
   window in compressed time, and run the control loop (one cycle per real
   second by default) with a ``ScrapeSource`` over the ready replicas and the
   incident rules writing the local incident log;
4. stop everything (also on errors and Ctrl-C) and return the ``RunRecord``.

With ``metrics_port`` the loop serves the operator's ``pitboss_operator_*``
metrics on 127.0.0.1 (``controller.telemetry.metrics``), and with
``scrape_targets`` it keeps a Prometheus ``file_sd`` file listing the ready
replicas and that endpoint, so a local Prometheus and the Grafana dashboards
can watch a run (docs/dashboards.md).

Capacity (see docs/demo.md): a replica admits ``max_in_flight`` = 4 requests
and holds each for ``service_time`` = 0.2 s, so it serves at most 20
requests/s and answers 503 beyond; the policy sizes at ``utilization`` = 75 %
of that (15 requests/s per replica). The trace is scaled to 10 requests/s
before the event, ~4x during it: one replica before, four at the peak.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from controller.core.policy import Policy, ScaleDown
from controller.errors import InputError
from controller.incidents.engine import IncidentEngine
from controller.incidents.rules import RuleSettings
from controller.incidents.store import IncidentLog
from controller.local.loadgen import LoadGenerator, SpinWorkload
from controller.local.loop import Clock, ControlLoop, StepFeed, SystemClock, dwell_steps
from controller.local.observe import business_fetch
from controller.local.recorder import CycleRecord, EventSpan, RunRecord
from controller.local.scenario import STEP, Scenario, build_scenario
from controller.sources.scrape import ScrapeSource
from controller.targets.local import LocalConfig, LocalProcessTarget
from controller.telemetry.metrics import OperatorMetrics, serve
from forecasting import registry
from forecasting.base import Forecaster

# Files a run writes in its output directory (and removes first: never anything else there).
RUN_FILES = ("casino.db", "casino.db-wal", "casino.db-shm", "incidents.db", "incidents.db-wal", "incidents.db-shm",
             "run.json", "report.html")


@dataclass(frozen=True)
class RunConfig:
    """Every knob of a local run; validated on construction with the field named."""

    out: Path = Path("var/demo")
    duration: float = 90.0  # real seconds of live replay
    speed: float = 60.0  # simulated seconds per real second
    max_in_flight: int = 4
    service_time: float = 0.2  # seconds per request -> 20 req/s per replica
    utilization: float = 0.75  # the policy sizes replicas at this share of their capacity
    min_replicas: int = 1
    max_replicas: int = 4
    base_rate: float = 10.0  # requests/s just before the live window
    kind: str = "tournament"
    seed: int = 7
    players: int = 6
    startup_factor: float = 1.5
    startup_margin: float = 1.0  # real seconds
    cycle: float = 1.0  # real seconds between control cycles
    # Simulated. Longer than the HPA's 5 minutes: on the event's plateau the forecast's p95 sits near
    # a replica boundary (45 req/s = 3 x 15), and 5 minutes let it flap 4 -> 3 -> 4 mid-event.
    stabilization: timedelta = timedelta(minutes=10)
    model: str = "calendar"
    metrics_port: int | None = None  # serve pitboss_operator_* metrics on 127.0.0.1:<port>
    scrape_targets: Path | None = None  # a Prometheus file_sd JSON of the replicas and the metrics endpoint

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("duration", 10 <= self.duration <= 900, "between 10 and 900 seconds"),
            ("speed", 1 <= self.speed <= 600, "between 1 and 600 simulated seconds per real second"),
            ("maxInFlight", 1 <= self.max_in_flight <= 64, "between 1 and 64"),
            ("serviceTime", 0.01 <= self.service_time <= 2, "between 0.01 and 2 seconds"),
            ("utilization", 0.1 <= self.utilization <= 1, "between 0.1 and 1"),
            ("minReplicas", 1 <= self.min_replicas <= 8, "between 1 and 8"),
            ("maxReplicas", self.min_replicas <= self.max_replicas <= 8, "between minReplicas and 8"),
            ("baseRate", 0 < self.base_rate <= 200, "a positive requests/s up to 200"),
            ("cycle", 0.2 <= self.cycle <= 10, "between 0.2 and 10 seconds"),
            ("players", 1 <= self.players <= 50, "between 1 and 50"),
            ("seed", 0 <= self.seed < 2**32, "between 0 and 2**32 - 1"),
            ("metricsPort", self.metrics_port is None or 1 <= self.metrics_port <= 65535, "a TCP port (1-65535)"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InputError(f"expected {expected}, got {getattr(self, _snake(name))}", field=name)
        if self.model not in registry.MODELS:  # on load, not when the run reaches its first fit
            raise InputError(f"unknown model {self.model!r}; expected one of {', '.join(registry.names())}",
                             field="model")
        if self.duration * self.speed < 20 * 60:
            raise InputError(f"duration x speed must cover at least 20 simulated minutes, got"
                             f" {self.duration * self.speed / 60:g}", field="duration")

    @property
    def capacity(self) -> float:
        """Requests/s the policy assumes per replica."""
        return self.max_in_flight / self.service_time * self.utilization

    @property
    def live_minutes(self) -> int:
        return int(self.duration * self.speed // 60)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


@dataclass
class Hooks:
    """Progress callbacks for the CLI (all optional)."""

    stage: Callable[[str], None] = lambda _: None
    cycle: Callable[[CycleRecord], None] = lambda _: None


def _clean(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    logs = out / "replicas"
    if logs.is_dir():
        for log in logs.glob("replica-*.log"):
            log.unlink()


def _fit(config: RunConfig, result: dict[str, Any]) -> None:
    try:
        scenario = build_scenario(config.live_minutes, kind=config.kind, base_rate=config.base_rate, seed=config.seed)
        began = time.perf_counter()
        model = registry.create(config.model).fit(scenario.history, scenario.events)
        result["scenario"], result["model"], result["fit_seconds"] = scenario, model, time.perf_counter() - began
    except BaseException as exc:  # re-raised in the caller's thread
        result["error"] = exc


def lead_time(startup: float, config: RunConfig) -> timedelta:
    """Simulated lead time: measured start-up x factor + margin (real), compressed, in whole minutes."""
    real = startup * config.startup_factor + config.startup_margin
    return timedelta(minutes=math.ceil(real * config.speed / 60.0))


def run_local(config: RunConfig, hooks: Hooks | None = None, clock: Clock | None = None) -> RunRecord:
    """Run the whole local loop once; every process it started is stopped when it returns or raises."""
    hooks = hooks or Hooks()
    clock = clock or SystemClock()
    _clean(config.out)
    local = LocalConfig(max_in_flight=config.max_in_flight, service_time=config.service_time)
    record = RunRecord()
    with LocalProcessTarget(config.out, local) as target:
        # Start-up is measured on (at least) two replicas starting together, as scale-ups start them,
        # then the extra one is let go before the replay.
        probe = min(max(config.min_replicas, 2), config.max_replicas)
        hooks.stage(f"starting {probe} casino replica(s) to measure start-up; fitting the {config.model} forecaster")
        spawned = clock.monotonic()
        target.set_replicas(target.key, probe)
        fitted: dict[str, Any] = {}
        fitter = threading.Thread(target=_fit, args=(config, fitted), name="pitboss-fit")
        fitter.start()
        target.wait_ready(probe, timeout=local.startup_timeout)
        fitter.join()
        target.set_replicas(target.key, config.min_replicas)
        if "error" in fitted:
            raise fitted["error"]
        scenario: Scenario = fitted["scenario"]
        model: Forecaster = fitted["model"]
        startup = max(target.startup_seconds)
        lead = lead_time(startup, config)
        sync = timedelta(seconds=config.cycle * config.speed)
        lead_in = scenario.event.start - scenario.start
        if lead_in < lead + sync:
            raise InputError(
                f"the event starts {lead_in.total_seconds() / 60:.0f} simulated minutes into the run but replicas"
                f" need {lead.total_seconds() / 60:.0f} (start-up {startup:.1f}s x speed {config.speed:g});"
                " use a longer --duration or a lower --speed", field="duration")
        policy = Policy(capacity_per_replica=config.capacity, min_replicas=config.min_replicas,
                        max_replicas=config.max_replicas, lead_time=lead, sync_period=sync,
                        headroom_quantile=0.95, scale_down=ScaleDown(stabilization_window=config.stabilization))
        lead_steps = math.ceil(lead / STEP)
        plan = model.predict(len(scenario.live) + lead_steps + 5, scenario.events)
        # The forecast reaches the scale-down guard's whole dwell (lead + sync + stabilization window), as the
        # operator's 6 h forecast does, so the local loop decides on the same paths as the operator.
        feed = StepFeed(model, scenario.events, scenario.history.index[-1], STEP, plan,
                        horizon_steps=dwell_steps(policy, STEP))

        hooks.stage("registering demo players")
        workload = SpinWorkload(players=config.players)
        workload.setup(target.ready_urls()[0])

        # A rate over the last cycle only (one simulated step at 60x): the loop's readings then
        # follow demand within a step; the forecast absorbs them step by step.
        scrape_client = httpx.Client(timeout=1.0)
        source = ScrapeSource(target.metrics_urls, rate_window=timedelta(seconds=config.cycle),
                              fetch=business_fetch(scrape_client))
        log = IncidentLog(config.out / "incidents.db")
        metrics, server = _serve_metrics(config, fitted.get("fit_seconds"))
        try:
            engine = IncidentEngine(log=log)
            loop = ControlLoop(
                policy=policy, feed=feed, target=target, key=target.key, source=source, record=record,
                live_start=scenario.start, speed=config.speed, events=scenario.events, incidents=engine,
                rules=RuleSettings(ready_margin=sync), clock=clock, cycle_seconds=config.cycle,
                trace_rate=lambda el: scenario.rate_at(loop.sim_time(el)),
                lead_time=lambda: lead_time(max(target.startup_seconds), config), metrics=metrics,
            )
            expected = float(scenario.live.sum()) * 60.0 / config.speed
            load = LoadGenerator(lambda el: scenario.rate_at(loop.sim_time(el)), target.ready_urls, workload,
                                 max_requests=int(expected * 1.5) + 100, max_seconds=config.duration + 5,
                                 clock=clock.monotonic)
            loop.load = load.snapshot
            record.meta = {
                "speed": config.speed, "duration": config.duration, "cycle": config.cycle,
                "capacity_per_replica": config.capacity, "replica_capacity": config.max_in_flight / config.service_time,
                "max_in_flight": config.max_in_flight, "service_time": config.service_time,
                "utilization": config.utilization, "min_replicas": config.min_replicas,
                "max_replicas": config.max_replicas, "startup_seconds": list(target.startup_seconds),
                "lead_time_min": lead.total_seconds() / 60, "sync_period_s": sync.total_seconds(),
                "model": config.model, "live_start": scenario.start.isoformat(),
                "live_end": (scenario.live.index[-1] + STEP).isoformat(), "policy": policy.model_dump(mode="json"),
                "config": {k: str(v) for k, v in asdict(config).items()}, "max_requests": load.max_requests,
                "spawn_to_ready_first": startup, "spawned_monotonic": spawned,
                # how `pitboss status --run` names the run's one policy (as its incidents are labelled)
                "policy_name": "casino", "namespace": "local", "target": "casino (local uvicorn processes)",
            }
            record.events = [EventSpan(e.name, e.kind, e.start, e.end, e.expected_lift) for e in scenario.events
                             if e.end >= scenario.start and e.start <= scenario.live.index[-1] + STEP]
            record.trace = [(t, float(v)) for t, v in scenario.live.items()]
            frame = plan.to_frame()
            record.plan = [(t, float(r["q50"]), float(r["q95"]), float(r["q99"])) for t, r in frame.iterrows()
                           if t <= scenario.live.index[-1] + STEP]
            hooks.stage(f"live replay: {config.duration:g}s at {config.speed:g}x ({config.live_minutes} simulated"
                        f" minutes), lead time {lead.total_seconds() / 60:.0f} min")
            load.start(at=loop.t0)
            on_cycle = hooks.cycle
            if config.scrape_targets is not None:
                targets_file = config.scrape_targets

                def on_cycle(rec: CycleRecord) -> None:
                    write_scrape_targets(targets_file, target.ready_urls(), config.metrics_port)
                    hooks.cycle(rec)

                write_scrape_targets(targets_file, target.ready_urls(), config.metrics_port)
            try:
                loop.run(config.duration, on_cycle=on_cycle)
            finally:
                load.stop()
            if load.error is not None:
                raise load.error
            loop.settle(load.snapshot())
            record.meta["forecast_updates"] = feed.updates
            record.meta["forecast_update_failures"] = feed.failure_notes()
            record.meta["cycles_without_forecast"] = loop.uncovered_cycles  # a forecast that missed now (an error)
            record.meta["restarts"] = target.restarts
            record.meta["lead_changes"] = [(t.isoformat(), d.total_seconds() / 60) for t, d in loop.lead_changes]
            record.meta["lead_time_min"] = loop.policy.lead_time.total_seconds() / 60
            record.meta["load_totals"] = asdict(load.snapshot())
            record.meta["startup_seconds"] = list(target.startup_seconds)
            record.replica_events = [
                {"t": loop.sim_time(ev.at - loop.t0).isoformat(), "elapsed": ev.at - loop.t0,
                 "replica": ev.replica, "what": ev.what, "detail": ev.detail}
                for ev in target.events
            ]
        finally:
            source.close()
            scrape_client.close()
            log.close()
            if server is not None:
                server.shutdown()
                server.server_close()
    record.save(config.out / "run.json")
    return record


def _serve_metrics(config: RunConfig, fit_seconds: float | None) -> tuple[OperatorMetrics | None, Any]:
    """The loop's OperatorMetrics and, with ``metrics_port``, their HTTP endpoint (None, None without it)."""
    if config.metrics_port is None and config.scrape_targets is None:
        return None, None
    metrics = OperatorMetrics()
    if fit_seconds is not None:
        metrics.forecast_fit.labels("fit").observe(fit_seconds)
    server = None
    if config.metrics_port is not None:
        try:
            server = serve(metrics, config.metrics_port, host="127.0.0.1")
        except OSError as exc:
            raise InputError(f"cannot listen on 127.0.0.1:{config.metrics_port}: {exc.strerror}",
                             field="metricsPort") from None
    return metrics, server


def write_scrape_targets(path: Path, replica_urls: list[str], metrics_port: int | None) -> None:
    """A Prometheus file_sd file: the ready replicas (service=casino) and the loop's metrics endpoint.

    Written atomically (a temp file renamed into place): Prometheus re-reads it on change.
    """
    groups: list[dict[str, Any]] = [{
        "targets": [u.removeprefix("http://") for u in replica_urls],
        "labels": {"namespace": "local", "service": "casino"},
    }]
    if metrics_port is not None:
        groups.append({"targets": [f"127.0.0.1:{metrics_port}"], "labels": {"service": "pitboss-local"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(groups, indent=1))
    tmp.replace(path)
