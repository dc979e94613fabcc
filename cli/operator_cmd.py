"""CLI commands: `pitboss operator run | sync-events | crds | validate` (the Kubernetes operator).

``run`` connects to the cluster (in-cluster config inside a Pod, else the
kubeconfig), takes part in leader election and reconciles every
ScalingPolicy each sync period (``--once``: one cycle, a table, exit);
SIGTERM/SIGINT fence every write, then release the Lease and exit 0. Every cycle the leader also
evaluates the incident rules: incidents go to the local log
(``--incidents-db``), to Kubernetes Events on the policy and, with
``--alertmanager-url``, to Alertmanager. ``sync-events`` mirrors the casino
calendar into TrafficEvents, keeping past ones for the retention (a one-shot
for the CronJob in manifests/components/sync-events). ``crds`` prints (or
writes) the CRDs generated from the resource models. ``validate`` checks ScalingPolicy /
TrafficEvent manifests offline. Registered on the root app by cli.app.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table

from cli.common import console, guarded
from cli.incidents_cmd import DEFAULT_DB as DEFAULT_INCIDENTS_DB  # the same log `pitboss incidents list` reads
from controller.core.durations import format_duration, parse_duration
from controller.errors import InputError

CACHE_SYNC_WAIT_S = 10.0  # `operator run` waits this long at most for its informers before the loop starts

operator_app = typer.Typer(help="The Kubernetes operator: reconcile loop, CRDs, manifest checks.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `pitboss operator ...` to the root app."""
    app.add_typer(operator_app, name="operator")


def _api_client(kubeconfig: Path | None, context: str | None, write_concurrency: int = 1) -> Any:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    from controller.operator.writes import size_pool

    cfg = size_pool(client.Configuration(), write_concurrency)  # urllib3's pool: the writers and the watches
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
        else:
            path = kubeconfig or Path(os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser()
            if not path.is_file():
                raise InputError(f"no such file: {path}", field="--kubeconfig")
            config.load_kube_config(config_file=str(path), context=context, client_configuration=cfg)
    except ConfigException as exc:
        raise InputError(f"cannot load: {exc}", field="--kubeconfig") from None
    return client.ApiClient(cfg)


@operator_app.command("run")
@guarded
def run(
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="kubeconfig file (default: in-cluster, else ~/.kube/config)"
    ),
    context: str | None = typer.Option(None, "--context", help="kubeconfig context"),
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="only this namespace (default: all)"),
    sync_period: str = typer.Option("15s", "--sync-period", help="reconcile every policy this often"),
    once: bool = typer.Option(False, "--once", help="one cycle, print what was decided, exit"),
    prometheus_url: str | None = typer.Option(None, "--prometheus-url", envvar="PITBOSS_PROMETHEUS_URL",
                                              help="Prometheus for metric.promql policies"),
    metrics_port: int = typer.Option(0, "--metrics-port", help="serve /metrics, /healthz, /readyz here (0: off)"),
    leader_election: bool = typer.Option(True, "--leader-election/--no-leader-election"),
    lease_namespace: str = typer.Option("pitboss-system", "--lease-namespace", envvar="POD_NAMESPACE"),
    lease_duration: str = typer.Option("15s", "--lease-duration",
                                       help="a follower takes over after the Lease has not changed this long"),
    renew_deadline: str | None = typer.Option(
        None, "--renew-deadline", help="the leader stops writing when it could not renew for this long"
        " (default: 2/3 of --lease-duration, 10s for 15s)"),
    retry_period: str | None = typer.Option(
        None, "--retry-period", help="renew, or try to acquire, this often (default: 2/15 of --lease-duration, 2s)"),
    identity: str | None = typer.Option(None, "--identity", help="leader-election identity (default: pod name + pid)"),
    shards: int = typer.Option(
        1, "--shards", envvar="PITBOSS_SHARDS",
        help="split the policies over this many Leases (<lease>-shard-<i>); each replica holds its fair share"
        " (1: one leader for every policy)"),
    log_level: str = typer.Option("INFO", "--log-level"),
    alertmanager_url: str | None = typer.Option(
        None, "--alertmanager-url", envvar="PITBOSS_ALERTMANAGER_URL",
        help="send incidents to this Alertmanager (API v2), e.g. http://alertmanager:9093"),
    alertmanager_timeout: str = typer.Option("5s", "--alertmanager-timeout",
                                             help="per request to Alertmanager (delivery runs off the loop)"),
    alert_resend: str = typer.Option("1m", "--alert-resend-interval",
                                     help="re-send every firing incident to Alertmanager this often"),
    incidents_db: Path = typer.Option(
        Path(DEFAULT_INCIDENTS_DB), "--incidents-db", envvar="PITBOSS_INCIDENTS_DB",
        help="local incident log (SQLite; read by `pitboss incidents list`)"),
    native_threads: int = typer.Option(
        1, "--native-threads", envvar="PITBOSS_NATIVE_THREADS",
        help="threads of numpy's BLAS/OpenMP pools (0: the libraries' default, sized by the node's cores)"),
    cache: bool = typer.Option(
        True, "--cache/--no-cache",
        help="read policies, events and Deployment/StatefulSet replicas from watch-fed caches (not with --once)"),
    spread_updates: bool = typer.Option(
        True, "--spread-updates/--no-spread-updates",
        help="spread each forecast step's model updates (and the status writes they cause) over the step's"
        " cycles, each policy in its phase (--no-spread-updates: every policy updates in the step's first cycle)"),
    cache_max_stale: str | None = typer.Option(
        None, "--cache-max-stale",
        help="while a cache relists (410 Gone, a broken watch), read its last snapshot for at most this long,"
        " then the API (default: 2 x --sync-period; 0s: the API at once)"),
    write_concurrency: int = typer.Option(
        8, "--write-concurrency", envvar="PITBOSS_WRITE_CONCURRENCY",
        help="write this many policies' /scale, /status and Events at once, each policy's in order"
        " (1: one policy after another); the API client's connection pool is sized to match"),
    status_max_age: str | None = typer.Option(
        None, "--status-max-age",
        help="write a status whose only changes are volatile (observed demand, messages, times) at most this"
        " often; material changes (replicas, conditions, incidents...) at once (default: 4 x --sync-period;"
        " 0s: every change at once)"),
    fit_budget: str | None = typer.Option(
        None, "--fit-budget",
        help="spend at most this long fitting forecasts per cycle (default: fit while the cycle stays within"
        " half the sync period)"),
) -> None:
    """Run the reconcile loop (leader-elected; SIGTERM releases the lease and exits)."""
    from controller.operator.app import (
        SourceFactory,
        build_incidents,
        build_operator,
        limit_native_threads,
        open_incident_log,
        start_watches,
    )
    from controller.operator.leader import election_timings
    from controller.operator.shards import MAX_SHARDS
    from controller.operator.writes import check_concurrency
    from controller.telemetry.metrics import serve

    period = parse_duration(sync_period, field="--sync-period")
    if period <= parse_duration(0):
        raise InputError("must be positive", field="--sync-period")
    lease = parse_duration(lease_duration, field="--lease-duration")
    if lease.total_seconds() < 1:
        raise InputError("must be at least 1s", field="--lease-duration")
    deadline = None if renew_deadline is None else parse_duration(renew_deadline, field="--renew-deadline")
    retry = None if retry_period is None else parse_duration(retry_period, field="--retry-period")
    try:
        lease, deadline, retry = election_timings(lease, deadline, retry)
    except ValueError as exc:
        flag = {"renewDeadline": "--renew-deadline", "retryPeriod": "--retry-period"}.get(str(exc).split(":")[0],
                                                                                          "--lease-duration")
        raise InputError(str(exc).split(": ", 1)[1], field=flag) from None
    if not 1 <= shards <= MAX_SHARDS:
        raise InputError(f"expected 1..{MAX_SHARDS}, got {shards}", field="--shards")
    if shards > 1 and (once or not leader_election):
        raise InputError("needs leader election and the loop (not --once or --no-leader-election)",
                         field="--shards")
    if not 0 <= metrics_port <= 65535:
        raise InputError(f"expected 0..65535, got {metrics_port}", field="--metrics-port")
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise InputError(f"expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}", field="--log-level")
    if alertmanager_url is not None and not alertmanager_url.startswith(("http://", "https://")):
        raise InputError(f"expected an http:// or https:// URL, got {alertmanager_url!r}", field="--alertmanager-url")
    am_timeout = parse_duration(alertmanager_timeout, field="--alertmanager-timeout")
    if not 0.1 <= am_timeout.total_seconds() <= 60:
        raise InputError(f"expected 100ms..60s, got {alertmanager_timeout!r}", field="--alertmanager-timeout")
    resend = parse_duration(alert_resend, field="--alert-resend-interval")
    if not 1 <= resend.total_seconds() <= 3600:
        raise InputError(f"expected 1s..1h, got {alert_resend!r}", field="--alert-resend-interval")
    check_concurrency(write_concurrency)
    max_stale = None if cache_max_stale is None else parse_duration(cache_max_stale, field="--cache-max-stale")
    if max_stale is not None and max_stale < parse_duration(0):
        raise InputError("must not be negative", field="--cache-max-stale")
    max_age = None if status_max_age is None else parse_duration(status_max_age, field="--status-max-age")
    if max_age is not None and max_age < parse_duration(0):
        raise InputError(f"expected a duration of 0s or more, got {status_max_age!r}", field="--status-max-age")
    budget = None if fit_budget is None else parse_duration(fit_budget, field="--fit-budget")
    if budget is not None and budget <= parse_duration(0):
        raise InputError(f"expected a positive duration, got {fit_budget!r}", field="--fit-budget")
    limit_native_threads(native_threads)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # no request yet: a bad kubeconfig fails before any file is made
    api_client = _api_client(kubeconfig, context, write_concurrency)
    incident_log = open_incident_log(incidents_db)
    sources = SourceFactory(prometheus_url)
    incidents = build_incidents(api_client, db=incident_log, alertmanager_url=alertmanager_url,
                                alertmanager_timeout=am_timeout, sli=sources.sli, identity=identity,
                                resend_interval=resend, sync_period=period)
    op = build_operator(
        api_client,
        namespace=namespace,
        demand=sources,
        lag=sources.lag,
        sync_period=period,
        leader_election=leader_election,
        lease_namespace=lease_namespace,
        lease_duration=lease,
        renew_deadline=deadline,
        retry_period=retry,
        identity=identity,
        incidents=incidents,
        deliver_in_background=not once,
        shards=shards,
        cache=cache and not once,  # one cycle: a LIST is cheaper than a LIST and a watch
        spread_updates=spread_updates,
        write_concurrency=write_concurrency,
        cache_max_stale=max_stale,
        status_max_age=max_age,
        fit_budget=budget,
    )
    if metrics_port:
        serve(op.metrics, metrics_port)
    if once:
        try:
            report = op.loop.step()  # a leader cycle delivers its incidents inline at its end
            firing = len(incidents.engine.active)
            pending = {q.name: q.pending() for q in incidents.engine.queues if q.pending()}
        finally:
            op.close()
        if op.elector is not None:
            op.elector.release()
        if report is None:
            console.print("not the leader: another instance holds the lease; nothing done")
            return
        table = Table("namespace", "policy", "current", "desired", "reason", "scaled",
                      title="pitboss operator: one cycle")
        for o in report.outcomes:
            table.add_row(o.namespace, o.name, str(o.current if o.current is not None else "-"),
                          str(o.desired if o.desired is not None else "-"), o.reason, "yes" if o.scaled else "")
        console.print(table)
        console.print(f"{len(report.outcomes)} policies in {report.seconds:.3f}s "
                      f"(API {report.api_seconds:.3f}s, demand {report.source_seconds:.3f}s)")
        console.print(f"incidents: {firing} firing (log {incidents_db})"
                      + (f"; undelivered: {pending}" if pending else ""))
        return
    signal.signal(signal.SIGTERM, lambda *_: op.loop.stop())
    signal.signal(signal.SIGINT, lambda *_: op.loop.stop())
    start_watches(op, namespace)
    if op.informers is not None:  # a few seconds at most: until then a cycle would read the API directly
        started = time.monotonic()
        synced = op.informers.wait_synced(CACHE_SYNC_WAIT_S)
        logging.getLogger("pitboss.operator").info(
            "caches synced in %.1fs" if synced else "caches not synced after %.0fs: cycles read the API directly "
            "until they are", time.monotonic() - started if synced else CACHE_SYNC_WAIT_S)
    logging.getLogger("pitboss.operator").info(
        "operator running: sync %s, namespace %s", format_duration(period), namespace or "(all)")
    try:
        op.loop.run()
    finally:
        op.close()


@operator_app.command("sync-events")
@guarded
def sync_events_cmd(
    casino_url: str = typer.Option(..., "--casino-url", help="base URL of the casino API, e.g. http://casino-api"),
    namespace: str = typer.Option(..., "--namespace", "-n", help="namespace of the TrafficEvents"),
    days: int = typer.Option(30, "--days", help="sync events from the past retention to this many days ahead"),
    retention: str = typer.Option(
        "7d", "--retention", help="keep ended events at least this long; the namespace's longest"
        " ScalingPolicy forecast.history wins when it is longer"),
    label: list[str] = typer.Option([], "--label", help="extra label k=v on every synced TrafficEvent"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print what would change; write nothing"),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig"),
    context: str | None = typer.Option(None, "--context"),
) -> None:
    """Mirror the casino API's /v1/events calendar into TrafficEvents, keeping past events for the forecast."""
    from datetime import UTC, datetime

    import httpx

    from controller.operator.calendar_sync import check_labels, run_sync

    if not casino_url.startswith(("http://", "https://")):
        raise InputError(f"expected an http:// or https:// URL, got {casino_url!r}", field="--casino-url")
    if not 1 <= days <= 366:
        raise InputError(f"expected 1..366, got {days}", field="--days")
    keep = parse_duration(retention, field="--retention")
    if keep > parse_duration("3660d"):
        raise InputError(f"expected at most 3660d, got {retention!r}", field="--retention")
    labels: dict[str, str] = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"expected key=value, got {item!r}", field="--label")
        labels[key] = value
    check_labels(labels)
    api_client = _api_client(kubeconfig, context)
    with httpx.Client(base_url=casino_url, timeout=10) as http:
        report = run_sync(api_client, http, namespace, now=datetime.now(UTC), days=days, retention=keep,
                          labels=labels, dry_run=dry_run)
    verb = "would " if dry_run else ""
    for what, names in (("create", report.created), ("update", report.updated), ("delete", report.deleted),
                        ("delete (older than the retention)", report.expired)):
        for name in names:
            typer.echo(f"{verb}{what} trafficevent/{name}")
    typer.echo(report.summary())


@operator_app.command("crds")
@guarded
def crds(
    out: Path | None = typer.Option(None, "--out", help="write one file per CRD into this directory"),
) -> None:
    """Print the CustomResourceDefinitions generated from the resource models."""
    from controller.operator.crds import all_crds, render

    generated = all_crds()
    if out is None:
        typer.echo("---\n".join(render(crd) for crd in generated.values()), nl=False)
        return
    if out.exists() and not out.is_dir():
        raise InputError("expected a directory", field="--out")
    out.mkdir(parents=True, exist_ok=True)
    for name, crd in generated.items():
        (out / name).write_text(render(crd), encoding="utf-8")
        console.print(f"wrote {out / name}")


@operator_app.command("validate")
@guarded
def validate(
    files: list[Path] = typer.Argument(..., help="YAML files with ScalingPolicy/TrafficEvent documents"),
    json_out: bool = typer.Option(False, "--json", help="print {\"valid\": N, \"resources\": [...]} as JSON"),
) -> None:
    """Check ScalingPolicy and TrafficEvent manifests offline (other kinds are skipped)."""
    from controller.operator.resources import parse_event, parse_policy_spec

    checked = 0
    valid: list[dict[str, Any]] = []
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
        except yaml.YAMLError as exc:
            raise InputError(f"not YAML: {str(exc).splitlines()[0]}", source=str(path)) from None
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            name = (doc.get("metadata") or {}).get("name", "?")
            try:
                if doc.get("kind") == "ScalingPolicy":
                    parse_policy_spec(doc.get("spec"))
                elif doc.get("kind") == "TrafficEvent":
                    parse_event(doc)
                else:
                    continue
            except ValueError as exc:
                raise InputError(str(exc).removeprefix(f"TrafficEvent {name}: "),
                                 source=f"{path} {doc.get('kind')}/{name}") from None
            checked += 1
            valid.append({"file": str(path), "kind": doc.get("kind"), "name": name})
    if json_out:
        typer.echo(json.dumps({"valid": checked, "resources": valid}))
        return
    console.print(f"{checked} resource(s) valid")
