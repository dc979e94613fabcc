"""Assemble a running operator from a Kubernetes API client: the one wiring place.

``build_operator`` connects the Reconciler to the real adapters (policy
store, /scale targets, Event recorder, Lease), the demand sources
(``controller.sources``: Prometheus for ``metric.promql``, a direct scrape for
``metric.scrape``) and the forecasting registry. ``build_incidents`` wires the
incident engine: the local SQLite log always (what `pitboss incidents list`
reads), Alertmanager when a URL is given (the firing state re-sent each resend
interval, no outbox), Kubernetes Events on the policies always;
``build_operator(incidents=...)`` puts it in the loop and starts its delivery
thread (sending only while this instance leads). With ``cache=True`` (what
``pitboss operator run`` uses) the policy store and the /scale target read
from watch-fed caches (``controller.operator.cached``: one informer each for
ScalingPolicies, TrafficEvents, Deployments and StatefulSets), whose events
also wake the loop; without it ``watch_stream`` (``controller.operator.watches``) feeds the loop's wake-ups
from ScalingPolicy and TrafficEvent watches. Called by
``pitboss operator run``; tests build the same pieces against the emulator.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client

from controller.core.decision import ReplicaLag
from controller.cycle.deadline import CycleDeadline
from controller.errors import InputError, PermanentError
from controller.incidents.alertmanager import AlertmanagerClient, AlertmanagerSink
from controller.incidents.engine import IncidentEngine
from controller.incidents.events import EventRecorder as IncidentEventRecorder
from controller.incidents.events import KubernetesEventSink
from controller.incidents.queue import Sink
from controller.incidents.rules import RuleSettings
from controller.incidents.store import IncidentLog
from controller.operator.cached import CachedPolicyStore, CachedScaleTarget, Informers, max_stale_seconds
from controller.operator.clock import Clock, SystemClock
from controller.operator.fence import Fence, FencedEventRecorder, FencedPolicyStore, FencedScaleTarget
from controller.operator.incidents import DeliveryWorker, IncidentReporter, SLIFactory, alertmanager_announced
from controller.operator.kube import (
    KubernetesEventRecorder,
    KubernetesLeaseApi,
    KubernetesPolicyStore,
    PolicyObject,
    PolicyStore,
    default_identity,
)
from controller.operator.leader import Election, LeaderElector
from controller.operator.loop import OperatorLoop
from controller.operator.reconcile import DemandFactory, LagFactory, LagSource, Reconciler
from controller.operator.resources import EVENT_PLURAL, POLICY_PLURAL, ScalingPolicySpec
from controller.operator.shards import ShardedElector
from controller.operator.slo import PolicySLIFactory
from controller.operator.watches import wake, watch_stream
from controller.operator.writes import DEFAULT_WRITE_CONCURRENCY, WritePool
from controller.sources.base import DemandSource
from controller.sources.retry import Backoff
from controller.sources.sli import SLISource
from controller.targets.base import ScaleTarget
from controller.targets.kubernetes import KubernetesScaleTarget
from controller.telemetry.metrics import OperatorMetrics

log = logging.getLogger(__name__)


def limit_native_threads(threads: int) -> dict[str, int]:
    """Cap the BLAS/OpenMP pools numpy and statsmodels use at ``threads`` (0: leave them as the libraries chose).

    OpenBLAS sizes its pool by the node's cores, not the pod's CPU limit, so one calendar fit (a few small
    solves) spreads over every core and waits on them: on a loaded 2-core machine a fit took 1.2 s unpinned
    against 0.14-0.25 s on one thread (docs/operator.md). The operator's work is many small fits, so one
    thread each is the fast setting. threadpoolctl (a well-kept scikit-learn project) does this for every
    native library loaded, where environment variables only work before numpy is imported.
    Returns the thread count per library after the change (``threadpool_info``).
    """
    import numpy  # noqa: F401  (load the native pools first: threadpoolctl caps only what is loaded;
    import scipy.linalg  # noqa: F401  scipy ships its own OpenBLAS, used by statsmodels)
    from threadpoolctl import threadpool_info, threadpool_limits

    if threads < 0:
        raise InputError(f"expected 0 (the libraries' default) or a positive count, got {threads}",
                         field="--native-threads")
    if threads:
        threadpool_limits(limits=threads)  # process-wide, kept for the operator's life
    return {f"{i['internal_api']}:{i.get('filepath', '')}": int(i["num_threads"]) for i in threadpool_info()}


class _Unavailable:
    """A DemandSource that always fails: the policy holds with MetricsAvailable=False and says why."""

    def __init__(self, why: str) -> None:
        self.why = why

    def history(self, start: Any, end: Any, step: Any) -> Any:
        raise PermanentError(self.why)

    def current(self, now: Any) -> float | None:
        raise PermanentError(self.why)


class PrometheusLagSource:
    """Replication lag per read replica from ``databaseReplicas.lagQuery`` (one instant query per cycle)."""

    def __init__(self, client: Any, query: str) -> None:
        self.client = client
        self.query = query

    def lags(self, now: datetime) -> tuple[ReplicaLag, ...]:
        """(replica, lag seconds) from the query's vector; NaN or +Inf lag counts as unknown."""
        out = []
        for i, (labels, value) in enumerate(self.client.query(self.query, now)):
            name = labels.get("pod") or labels.get("instance") or labels.get("replica") or f"replica-{i}"
            out.append(ReplicaLag(name, value if math.isfinite(value) else None))
        return tuple(sorted(out, key=lambda r: r.name))


class SourceFactory:
    """One DemandSource per policy and metric, built from controller.sources and reused across cycles.

    ``metric.scrape`` reads every pod of the target on its own through the Kubernetes API client that
    ``build_operator`` binds (``bind``): the Service's EndpointSlices, or the pods of the target's /scale
    selector (``controller.sources.pods``).
    """

    def __init__(self, prometheus_url: str | None, api_client: client.ApiClient | None = None) -> None:
        self.prometheus_url = prometheus_url
        self.api_client = api_client
        self._sources: dict[tuple[str, str, str], DemandSource] = {}
        self._client: Any = None
        self._slis: PolicySLIFactory | None = None

    def bind(self, api_client: client.ApiClient) -> None:
        """Use ``api_client`` to find the pods of scrape policies (unless one was given already)."""
        if self.api_client is None:
            self.api_client = api_client

    def __call__(self, policy: PolicyObject, spec: ScalingPolicySpec) -> DemandSource:
        metric = spec.metric
        ident = metric.promql or (metric.scrape.model_dump_json() + spec.target_ref.model_dump_json()
                                  if metric.scrape else "")
        key = (policy.namespace, policy.name, ident)
        if key not in self._sources:
            self._sources[key] = self._build(policy, spec)
        return self._sources[key]

    def _build(self, policy: PolicyObject, spec: ScalingPolicySpec) -> DemandSource:
        if spec.metric.promql is not None:
            if not self.prometheus_url:
                return _Unavailable("metric.promql needs the operator's --prometheus-url")
            from controller.sources.prometheus import PrometheusSource

            return PrometheusSource(self._prometheus(), spec.metric.promql)
        assert spec.metric.scrape is not None
        if self.api_client is None:
            return _Unavailable("metric.scrape needs a Kubernetes API client to find the target's pods")
        return scrape_source(self.api_client, policy.namespace, spec)

    def _prometheus(self) -> Any:
        from controller.sources.prometheus import PrometheusClient, PrometheusConfig

        if self._client is None:
            self._client = PrometheusClient(PrometheusConfig(url=self.prometheus_url or ""))
        return self._client

    def sli(self, policy: PolicyObject, spec: ScalingPolicySpec) -> SLISource | None:
        """An SLIFactory: the policy's own ``spec.slo`` queries through Prometheus; None without spec.slo.

        No built-in query is applied to a policy that did not name its SLIs (controller.operator.slo).
        """
        if self._slis is None:
            self._slis = PolicySLIFactory(self._prometheus() if self.prometheus_url else None)
        return self._slis(policy, spec)

    def lag(self, policy: PolicyObject, spec: ScalingPolicySpec) -> LagSource | None:
        """A LagFactory: the lagQuery through Prometheus (None without a query or a Prometheus)."""
        db = spec.database_replicas
        if db is None or db.lag_query is None or not self.prometheus_url:
            return None
        return PrometheusLagSource(self._prometheus(), db.lag_query)


def scrape_source(api_client: client.ApiClient, namespace: str, spec: ScalingPolicySpec) -> DemandSource:
    """The ScrapeSource of a ``metric.scrape`` policy: each of the target's pods, the named counter summed."""
    from controller.sources.pods import EndpointSliceTargets, SelectorTargets
    from controller.sources.scrape import ScrapeSource
    from controller.targets.base import TargetKey

    scrape = spec.metric.scrape
    assert scrape is not None
    if scrape.service is not None:
        pods: Any = EndpointSliceTargets(api_client, namespace, scrape.service, port=scrape.port, path=scrape.path,
                                         scheme=scrape.scheme)
    else:
        ref = spec.target_ref
        key = TargetKey(namespace, ref.kind, ref.name, ref.api_version)
        scale = KubernetesScaleTarget(api_client, read_ready=False)
        pods = SelectorTargets(api_client, namespace, lambda: scale.get_scale(key).selector, port=scrape.port,
                               path=scrape.path, scheme=scrape.scheme)
    return ScrapeSource(pods, metric=scrape.metric, labels=scrape.labels, monotonic=time.monotonic)


@dataclass
class Operator:
    """The assembled parts (kept for tests and the CLI)."""

    loop: OperatorLoop
    reconciler: Reconciler
    elector: LeaderElector | ShardedElector | None
    metrics: OperatorMetrics
    api_client: client.ApiClient
    incidents: IncidentReporter | None = None
    informers: Informers | None = None  # cache=True: the watch-fed caches the store and targets read

    def close(self) -> None:
        """Stop the informers; stop incident delivery after one last attempt (bounded by the sinks' timeouts);
        close the log."""
        if self.informers is not None:
            self.informers.stop()
        self.reconciler.writes.close()
        reporter = self.incidents
        if reporter is None:
            return
        if reporter.worker is not None:
            reporter.worker.stop()
        if self.loop.leading:  # not after stop(): the fence is closed, the next leader re-sends
            reporter.flush(self.reconciler.clock.now())
        if reporter.engine.log is not None:
            reporter.engine.log.close()


def build_operator(
    api_client: client.ApiClient,
    *,
    namespace: str | None,
    demand: DemandFactory,
    clock: Clock | None = None,
    sync_period: timedelta = timedelta(seconds=15),
    fit_budget: timedelta | None = None,
    spread_updates: bool = True,
    leader_election: bool = True,
    lease_namespace: str = "pitboss-system",
    lease_name: str = "pitboss-operator",
    lease_duration: timedelta = timedelta(seconds=15),
    renew_deadline: timedelta | None = None,
    retry_period: timedelta | None = None,
    identity: str | None = None,
    metrics: OperatorMetrics | None = None,
    forecaster: Any = None,
    lag: LagFactory | None = None,
    incidents: IncidentReporter | None = None,
    deliver_in_background: bool = True,
    shards: int = 1,
    cache: bool = False,
    cache_timeout: int = 300,
    cache_max_stale: timedelta | None = None,
    write_concurrency: int = DEFAULT_WRITE_CONCURRENCY,
    status_max_age: timedelta | None = None,
) -> Operator:
    """Wire the Reconciler, leader election and loop to the Kubernetes API behind ``api_client``.

    With ``incidents`` the loop evaluates the incident rules every cycle; delivery runs on a
    ``DeliveryWorker`` thread (started here) unless ``deliver_in_background`` is False (then each
    cycle delivers inline at its end: ``--once``). ``shards`` > 1 (with leader election) splits the
    policies over that many Leases (``controller.operator.shards``); 1 is the single-leader Lease.
    ``spread_updates`` (default) spreads each step's forecast updates over the step's cycles
    (``controller.operator.forecasts``). ``cache`` starts the informers (``controller.operator.cached``;
    each watch lasts ``cache_timeout`` seconds before it resumes): a steady cycle then sends no LIST and
    no GET per policy; a relisting cache is read for ``cache_max_stale`` (default two sync periods) before the
    API is. ``write_concurrency`` policies' writes run at once (``controller.operator.writes``;
    1: one after another); size the client's pool for them (``writes.size_pool``) before building it.
    Fits run while the cycle stays within half the sync period (``controller.cycle.deadline``; a
    ``fit_budget`` instead fits that long per cycle). A status whose only changes are volatile is written
    at most every ``status_max_age`` (default four sync periods; 0: every change at once;
    ``controller.operator.status_writes``).
    """
    clock = clock or SystemClock()
    identity = identity or default_identity()
    if isinstance(demand, SourceFactory):
        demand.bind(api_client)  # metric.scrape policies find their pods through this client
    metrics = metrics or OperatorMetrics()
    writes = WritePool(write_concurrency).check_pool(api_client.configuration)
    elector: LeaderElector | ShardedElector | None = None
    store: PolicyStore = KubernetesPolicyStore(api_client)
    targets: ScaleTarget = KubernetesScaleTarget(api_client)
    informers: Informers | None = None
    woken: list[OperatorLoop] = []  # the loop, once built: the informers' events wake it
    if cache:
        informers = Informers.build(api_client, namespace, timeout_seconds=cache_timeout,
                                    max_stale=max_stale_seconds(sync_period, cache_max_stale),
                                    on_change=lambda plural, kind, raw: wake(woken, plural, kind, raw))
        store = CachedPolicyStore(store, informers, metrics)
        targets = CachedScaleTarget(targets, informers, metrics)
    if leader_election:
        election = Election.of(identity, lease_duration, renew_deadline, retry_period)
        leases = KubernetesLeaseApi(api_client)
        where = {"namespace": lease_namespace, "name": lease_name}
        elector = (ShardedElector(leases, clock, election, shards=shards, **where) if shards > 1
                   else LeaderElector(leases, clock, election, **where))
    fence = Fence(elector)  # every cluster write of the loop passes it (controller.operator.fence)
    reconciler = Reconciler(
        store=FencedPolicyStore(store, fence),
        targets=FencedScaleTarget(targets, fence),
        recorder=FencedEventRecorder(KubernetesEventRecorder(api_client, instance=identity), fence),
        demand=demand,
        clock=clock,
        namespace=namespace,
        metrics=metrics,
        forecaster=forecaster,
        lag=lag,
        incidents=incidents,
        # Sharded: reconcile only this replica's shards; the others' policies still exist, so their
        # incidents are handed off (not resolved) when a shard moves.
        owns=elector.owns if isinstance(elector, ShardedElector) else None,
        # Fits spread over cycles: a fit runs while the cycle, the fit and the cycle's expected rest stay within
        # half the sync period (controller.cycle.deadline), so a thousand first fits never hold back the
        # scaling decisions of the policies behind them; --fit-budget: a fixed budget of fitting instead.
        fit_budget=fit_budget,
        fit_deadline=None if fit_budget is not None else CycleDeadline((sync_period / 2).total_seconds()),
        # Updates spread over the cycles of a step (each policy in its phase), as the fits over cycles: a
        # step's thousand updates and status writes never land in one cycle (--no-spread-updates: they do).
        spread_updates=sync_period if spread_updates else None,
        writes=writes,
        status_max_age=4 * sync_period if status_max_age is None else status_max_age,
    )
    loop = OperatorLoop(reconciler, elector=elector, fence=fence, sync_period=sync_period, identity=identity)
    if isinstance(elector, ShardedElector):
        elector.on_gain = loop.wake  # a shard taken over is reconciled at once, not a sync period later
    if incidents is not None and deliver_in_background:
        incidents.worker = DeliveryWorker(incidents.engine, clock, leading=lambda: loop.leading,
                                          metrics=metrics).start()
    woken.append(loop)
    if informers is not None:
        informers.start()  # until they sync, the cycle reads the API directly (and says so)
    return Operator(loop, reconciler, elector, metrics, api_client, incidents, informers)


def open_incident_log(db: str | Path) -> IncidentLog:
    """The local incident log at ``db`` (created with its directory); InputError naming --incidents-db."""
    path = Path(db)
    if path.is_dir():
        raise InputError(f"expected a file, got the directory {path}", field="--incidents-db")
    try:
        return IncidentLog(path)
    except InputError as exc:
        detail = str(exc).split(": ", 1)[-1]  # without IncidentLog's own source/field prefix
        raise InputError(f"{path}: {detail}", field="--incidents-db") from None


def build_incidents(
    api_client: client.ApiClient | None,
    *,
    db: str | Path | IncidentLog,
    alertmanager_url: str | None = None,
    alertmanager_timeout: timedelta = timedelta(seconds=5),
    sli: SLIFactory | None = None,
    identity: str | None = None,
    settings: RuleSettings | None = None,
    resend_interval: timedelta = timedelta(minutes=1),
    sync_period: timedelta = timedelta(seconds=15),
    backoff: Backoff | None = None,
    extra_sinks: tuple[Sink, ...] = (),
) -> IncidentReporter:
    """The incident engine of one operator process and its sinks.

    The local log (SQLite at ``db``) always; Alertmanager API v2 when ``alertmanager_url`` is given
    (firing incidents re-sent every ``resend_interval`` with ``endsAt`` four times
    max(resend interval, sync period) ahead, as Prometheus does); Kubernetes Events on the
    ScalingPolicy when ``api_client`` is given (always, in the operator). Bad values raise
    InputError naming the flag.
    """
    sinks: list[Sink] = []
    announced = None
    if alertmanager_url is not None:
        try:
            am = AlertmanagerClient(alertmanager_url, timeout=alertmanager_timeout)
        except ValueError as exc:
            raise InputError(str(exc).removeprefix("alertmanager url: "), field="--alertmanager-url") from None
        sinks.append(AlertmanagerSink(am, ttl=4 * max(resend_interval, sync_period)))
        announced = alertmanager_announced(am)  # a policy new here carries on what its former owner sent
    if api_client is not None:
        sinks.append(KubernetesEventSink(incident_event_recorder(api_client, identity)))
    sinks.extend(extra_sinks)
    log_ = db if isinstance(db, IncidentLog) else open_incident_log(db)
    engine = IncidentEngine(sinks, log=log_, resend_interval=resend_interval,
                            backoff=backoff or Backoff(base=1.0, cap=60.0, attempts=1))
    return IncidentReporter(engine, settings=settings, sli=sli, emits_events=api_client is not None,
                            announced=announced)


def incident_event_recorder(api_client: client.ApiClient, identity: str | None = None) -> IncidentEventRecorder:
    """The incidents engine's EventRecorder (controller.incidents.events), backed by this operator's client.

    Wire it with ``KubernetesEventSink(incident_event_recorder(api_client))``: incidents then show up as
    Warning/Normal Events on their ScalingPolicy (mypy checks that the protocol matches).
    """
    return KubernetesEventRecorder(api_client, instance=identity)


def start_watches(op: Operator, namespace: str | None) -> None:
    """Watch ScalingPolicies and TrafficEvents so changes are reconciled at once (the informers do, if any)."""
    if op.informers is not None:
        return
    for plural in (POLICY_PLURAL, EVENT_PLURAL):
        op.loop.start_watch(plural, watch_stream(op.api_client, plural, namespace, op.loop))
