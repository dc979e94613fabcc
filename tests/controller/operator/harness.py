"""Scenario harness: a casino-shaped trace, trace-fed demand and operators wired to the emulator.

Demand comes from ``controller.sources.trace.TraceSource`` (the project's
trace-replay DemandSource) over a synthetic trace built here; ``Outage``
wraps it so a test can take metrics down. This is the loop's *input*, so
replaying a trace is the honest stand-in for Prometheus here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from controller.errors import RetryableError
from controller.operator.app import Operator, build_operator
from controller.operator.clock import Clock
from controller.operator.kube import PolicyObject
from controller.operator.resources import ScalingPolicySpec
from controller.sources.base import DemandSource
from controller.sources.trace import TraceSource
from tests.kube.fixtures import SYSTEM_NAMESPACE, api_client_for, create, deployment, scaling_policy

EVENT_START = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
# Past tournaments at other hours (so seasonality alone cannot predict 20:00), then the upcoming one.
TOURNAMENTS = (
    ("monday-madness", EVENT_START - timedelta(days=3, hours=6)),
    ("tuesday-turbo", EVENT_START - timedelta(days=2) + timedelta(hours=1)),
    ("wednesday-wheel", EVENT_START - timedelta(days=1, hours=4)),
    ("friday-frenzy", EVENT_START),
)


def casino_trace(
    end: datetime = EVENT_START + timedelta(hours=3),
    days: int = 5,
    base: float = 300.0,
    spikes: tuple[tuple[datetime, datetime, float], ...] = tuple(
        (start, start + timedelta(hours=1), 4.0) for _, start in TOURNAMENTS
    ),
    seed: int = 7,
) -> pd.Series:
    """Requests/s per minute: a flat-ish base with deterministic noise, multiplied inside ``spikes``."""
    index = pd.date_range(end - timedelta(days=days), end, freq="1min", tz="UTC", inclusive="left")
    rng = np.random.default_rng(seed)
    values = base * (1 + 0.03 * rng.standard_normal(len(index)))
    for start, stop, lift in spikes:
        mask = (index >= pd.Timestamp(start)) & (index < pd.Timestamp(stop))
        values[mask] *= lift
    series = pd.Series(values, index=index, name="demand")
    series.index.freq = "1min"
    return series


class Outage:
    """A DemandSource wrapper whose ``down`` flag makes every call fail (a Prometheus outage)."""

    def __init__(self, inner: DemandSource) -> None:
        self.inner = inner
        self.down = False

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        if self.down:
            raise RetryableError("prometheus: connection refused")
        return self.inner.history(start, end, step)

    def current(self, now: datetime) -> float | None:
        if self.down:
            raise RetryableError("prometheus: connection refused")
        return self.inner.current(now)


class TraceDemand:
    """DemandFactory: one trace-fed source per policy name (default: the same trace for all)."""

    def __init__(self, series: pd.Series | None = None) -> None:
        self.default = Outage(TraceSource(series if series is not None else casino_trace()))
        self.by_policy: dict[str, Outage] = {}

    def __call__(self, policy: PolicyObject, spec: ScalingPolicySpec) -> DemandSource:
        return self.by_policy.get(policy.name, self.default)


def policy_spec(**overrides: Any) -> dict[str, Any]:
    """The slots-api policy of the scenarios (camelCase, as a user writes it)."""
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "slots-api"},
        "metric": {"promql": 'sum(rate(http_requests_total{service="slots-api"}[1m]))'},
        "capacityPerReplica": 100,
        "minReplicas": 2,
        "maxReplicas": 40,
        "leadTime": "10m",
        "syncPeriod": "15s",
        "headroomQuantile": 0.95,
        "forecast": {"model": "calendar", "step": "1m", "history": "3d", "horizon": "3h"},
        "eventSelector": {"matchLabels": {"service": "slots"}},
        "mode": "Active",
    }
    spec.update(overrides)
    return spec


EVENT_SPEC = {"kind": "tournament", "start": "2026-11-27T20:00:00Z", "end": "2026-11-27T21:00:00Z",
              "expectedLift": 4.0}


def tournament_specs() -> list[tuple[str, dict[str, Any]]]:
    """(name, TrafficEvent spec) of every tournament in the trace, the upcoming friday-frenzy last."""
    out = []
    for name, start in TOURNAMENTS:
        end = start + timedelta(hours=1)
        out.append((name, {"kind": "tournament", "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "expectedLift": 4.0}))
    return out


def wait_for(what: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``what()`` every 20 ms until it is truthy (and return it); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := what():
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout}s: {what}")


def min_replicas_fleet(api: Any, n: int) -> None:
    """``n`` Deployments app-00.. at 1 replica and policies p-00.. on them with ``minReplicas`` 2 and a promql
    metric (no Prometheus: each policy holds and raises its target to 2, writing /scale, /status, Events)."""
    for i in range(n):
        create(api, deployment(f"app-{i:02d}", 1))
        create(api, scaling_policy(f"p-{i:02d}", {
            "targetRef": {"kind": "Deployment", "name": f"app-{i:02d}"},
            "metric": {"promql": "sum(rate(casino_http_requests_total[1m]))"},
            "capacityPerReplica": 100, "minReplicas": 2, "maxReplicas": 5}))


def in_memory_fleet(n: int, calendars: int = 1) -> tuple[Any, Any]:
    """(store, targets): ``n`` calendar-model policies (14 days of 1-minute history), each on its Deployment at 4,
    interleaved over ``calendars`` event calendars (calendar c: the tournaments c hours later; with one, the
    scenarios' ``service: slots`` selector). In-memory fakes, for the benchmarks that time the Reconciler alone."""
    from controller.operator.fakes import InMemoryPolicyStore
    from controller.targets.base import TargetKey
    from controller.targets.fake import InMemoryScaleTarget

    store, targets = InMemoryPolicyStore(), InMemoryScaleTarget()
    label = (lambda i: "slots") if calendars == 1 else (lambda i: f"slots-{i % calendars}")
    for i in range(n):
        name = f"svc-{i:05d}"
        targets.add(TargetKey("casino", "Deployment", name, "apps/v1"), 4)
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        store.add_policy("casino", f"policy-{i:05d}", policy_spec(
            targetRef=ref, eventSelector={"matchLabels": {"service": label(i)}},
            forecast={"model": "calendar", "step": "1m", "history": "14d", "horizon": "3h"}))
    for c in range(calendars):
        for name, event in tournament_specs():
            if calendars == 1:
                store.add_event("casino", name, event, {"service": "slots"})
                continue
            shifted = {**event, **{k: (datetime.fromisoformat(event[k]) + timedelta(hours=c))
                                   .strftime("%Y-%m-%dT%H:%M:%SZ") for k in ("start", "end")}}
            store.add_event("casino", f"{name}-{c}", shifted, {"service": f"slots-{c}"})
    return store, targets


def make_operator(url: str, clock: Clock, demand: TraceDemand, *, identity: str = "op-a",
                  leader_election: bool = True, lease_duration: timedelta = timedelta(seconds=15),
                  token: str | None = None, cache: bool = False, cache_timeout: int = 300,
                  cache_max_stale: timedelta | None = None) -> Operator:
    """An operator instance with its own ApiClient, on the shared fake clock (``cache``: its informers)."""
    return build_operator(
        api_client_for(url, token),
        namespace=None,
        demand=demand,
        clock=clock,
        leader_election=leader_election,
        lease_namespace=SYSTEM_NAMESPACE,
        lease_duration=lease_duration,
        identity=identity,
        cache=cache,
        cache_timeout=cache_timeout,
        cache_max_stale=cache_max_stale,
    )


def make_incident_operator(url: str, clock: Clock, demand: Any, db: Any, *, identity: str = "op-a",
                           leader_election: bool = False, alertmanager_url: str | None = None,
                           sli: Any = None, lag: Any = None, namespace: str | None = None,
                           background: bool = True, token: str | None = None,
                           lease_duration: timedelta = timedelta(minutes=1),
                           resend_interval: timedelta = timedelta(minutes=1), shards: int = 1) -> Operator:
    """An operator with incidents wired as ``pitboss operator run`` wires them (``--shards shards``).

    The local SQLite log at ``db``, Kubernetes Events through the official client on the emulator,
    and Alertmanager when ``alertmanager_url`` is given; delivery on the background thread
    (``background``). Backoff is short so retries happen within a test's few fake-clock cycles.
    The lease (1 min: renew deadline 40 s) outlives the 15 s fake-clock steps between cycles, as
    the renewer thread of ``run()`` would keep it.
    """
    from controller.operator.app import build_incidents
    from controller.sources.retry import Backoff

    incidents = build_incidents(api_client_for(url, token), db=db, alertmanager_url=alertmanager_url,
                                alertmanager_timeout=timedelta(seconds=2), sli=sli, identity=identity,
                                backoff=Backoff(base=0.5, cap=2.0, attempts=1), resend_interval=resend_interval,
                                sync_period=resend_interval)
    return build_operator(
        api_client_for(url, token),
        namespace=namespace,
        demand=demand,
        lag=lag,
        clock=clock,
        leader_election=leader_election,
        lease_namespace=SYSTEM_NAMESPACE,
        lease_duration=lease_duration,
        identity=identity,
        incidents=incidents,
        deliver_in_background=background,
        shards=shards,
    )
