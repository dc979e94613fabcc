"""CLI commands: the ``pitboss trace`` group, ``trace export`` here and ``trace synth`` from cli.forecast_cmd.

``trace export`` writes the user's own demand history in the trace format
(docs: data/README.md) from Prometheus: one PromQL query on a regular grid,
fetched in chunks of at most 11,000 points through
``controller.sources.prometheus.backfill`` (the operator's own backfill),
with a progress bar on stderr. A grid point without a sample is written as
an empty value (a gap), never zero. ``--policy NAME`` takes the query, the
grid step and the history length from a ScalingPolicy; the known events go
to an events CSV from the cluster's TrafficEvents (``--events-from-cluster``)
or the casino API's calendar (``--events-from-casino URL``). The files are
written atomically; ``pitboss simulate`` and ``backtest`` read them.
Registered on the root app by ``cli.app``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.cluster import ContextOption, KubeconfigOption, connected, selected_events
from cli.common import atomic_write, console, err_console, guarded, parse_timestamp
from cli.forecast_cmd import synth_command
from controller.core.durations import format_duration, parse_duration
from controller.errors import InputError, PermanentError, RetryableError
from controller.operator.resources import parse_policy_spec
from controller.sources.prometheus import PrometheusClient, PrometheusConfig, backfill
from controller.traceio import write_events, write_series
from forecasting.base import Event

trace_app = typer.Typer(help="Trace files: export your own history from Prometheus, or synthesize a casino trace.",
                        no_args_is_help=True)
QUERY_ERRORS = ("HTTP 400", "HTTP 422", "series, expected one", "expected a matrix", "expected a vector")

# One paragraph per example (typer joins a paragraph's lines with spaces).
EXPORT_EPILOG = """Example: pitboss trace export --prometheus http://prometheus:9090
--query 'sum(rate(casino_http_requests_total[5m]))' --since 14d --step 1m --out trace.csv

Example: pitboss trace export --prometheus http://prometheus:9090 --policy slots -n casino
--events-from-cluster --out trace.csv --events-out events.csv

Then: pitboss simulate trace.csv --events events.csv --capacity-per-replica 100 --lead-time 10m"""


def register(app: typer.Typer) -> None:
    """Add the ``trace`` group (``export``, ``synth``) to the root app."""
    trace_app.command("synth", epilog="Example: pitboss trace synth --days 14 --step 5m --seed 7 --out trace.csv "
                                      "--events-out events.csv")(synth_command)
    app.add_typer(trace_app, name="trace")


def _window(since: str | None, start: str | None, end: str | None, step: timedelta,
            default_since: timedelta) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) on the step grid (multiples of the step since the epoch, as Prometheus evaluates)."""
    if since is not None and start is not None:
        raise InputError("give --since or --start, not both", field="--since")
    grid = pd.Timedelta(step)
    t1 = parse_timestamp(end, "--end", naive_utc=True) if end is not None else pd.Timestamp.now(tz="UTC")
    t1 = t1.floor(grid)
    if start is not None:
        t0 = parse_timestamp(start, "--start", naive_utc=True).ceil(grid)
    else:
        span = parse_duration(since, field="--since") if since is not None else default_since
        if span <= timedelta(0):
            raise InputError(f"must be positive, got {since!r}", field="--since")
        t0 = (t1 - pd.Timedelta(span)).ceil(grid)
    if t1 - t0 < 2 * grid:
        raise InputError(f"the window {t0.isoformat()} .. {t1.isoformat()} holds fewer than two steps of "
                         f"{format_duration(step)}", field="--start" if start is not None else "--since")
    return t0, t1


def _prometheus_error(exc: Exception, url: str, query: str) -> Exception:
    """Bad PromQL or an unreachable/wrong URL is bad input (exit 2); a 5xx is a runtime failure (exit 1)."""
    text = str(exc)
    if isinstance(exc, PermanentError) and any(mark in text for mark in QUERY_ERRORS):
        return InputError(f"{query!r} rejected: {text.split(': ', 1)[-1]}", field="--query")
    if isinstance(exc, PermanentError) or "cannot connect" in text or "timed out" in text:
        return InputError(f"{url}: {text.split(': ', 1)[-1]}", field="--prometheus")
    return PermanentError(text)


@trace_app.command("export", epilog=EXPORT_EPILOG)
@guarded
def export_command(
    out: Path = typer.Option(..., "--out", help="series CSV to write (trace format)"),
    prometheus: str = typer.Option(..., "--prometheus", envvar="PITBOSS_PROMETHEUS_URL",
                                   help="Prometheus (or Thanos, Mimir, VictoriaMetrics) base URL"),
    query: str | None = typer.Option(None, "--query", help="PromQL returning one series of demand "
                                     "(default with --policy: its metric.promql)"),
    policy: str | None = typer.Option(None, "--policy", help="take the query, step and history from this "
                                      "ScalingPolicy"),
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="namespace of --policy and of the "
                                         "TrafficEvents (default: the kubeconfig context's)"),
    since: str | None = typer.Option(None, "--since", help="how far back from --end: 14d (default: 14d, or the "
                                     "policy's forecast.history)"),
    start: str | None = typer.Option(None, "--start", help="first timestamp (ISO 8601; no zone: UTC)"),
    end: str | None = typer.Option(None, "--end", help="end of the window, exclusive (default: now)"),
    step: str | None = typer.Option(None, "--step", help="grid step: 1m (default: 1m, or the policy's "
                                    "forecast.step)"),
    events_out: Path | None = typer.Option(None, "--events-out", help="events CSV to write (default: "
                                           "<out>_events.csv when an events source is given)"),
    events_from_cluster: bool = typer.Option(False, "--events-from-cluster", help="write the TrafficEvents "
                                             "(those the policy selects, with --policy)"),
    events_from_casino: str | None = typer.Option(None, "--events-from-casino", help="write the casino API's "
                                                  "event calendar from this base URL"),
    timeout: str = typer.Option("30s", "--timeout", help="per Prometheus request"),
    json_out: bool = typer.Option(False, "--json", help="print a JSON summary on stdout"),
    kubeconfig: Path | None = KubeconfigOption,
    context: str | None = ContextOption,
) -> None:
    """Export your own demand history from Prometheus as a trace (gaps kept as gaps)."""
    if query is None and policy is None:
        raise InputError("give --query PROMQL or --policy NAME", field="--query")
    if events_from_cluster and events_from_casino:
        raise InputError("give one events source, not both", field="--events-from-casino")
    if events_from_casino is not None and not events_from_casino.startswith(("http://", "https://")):
        raise InputError(f"expected an http:// or https:// URL, got {events_from_casino!r}",
                         field="--events-from-casino")
    if not prometheus.startswith(("http://", "https://")):
        raise InputError(f"expected an http:// or https:// URL, got {prometheus!r}", field="--prometheus")
    if events_out is None and (events_from_cluster or events_from_casino):
        events_out = out.with_name(f"{out.stem}_events.csv")
    for path, flag in ((out, "--out"), (events_out, "--events-out")):
        if path is not None and not path.resolve().parent.is_dir():
            raise InputError(f"directory {path.parent} does not exist", field=flag)

    grid, history, selector = timedelta(minutes=1), timedelta(days=14), None
    cluster_events: list[dict[str, Any]] = []
    if policy is not None or events_from_cluster:
        with connected(kubeconfig, context) as cluster:
            ns = namespace or cluster.default_namespace()
            if policy is not None:
                spec = parse_policy_spec(cluster.policy(ns, policy).get("spec"))
                if query is None:
                    if spec.metric.promql is None:
                        raise InputError(f"policy {policy!r} reads demand by scrape, not PromQL; give --query",
                                         field="--policy")
                    query = spec.metric.promql
                grid, history, selector = spec.forecast.step, spec.forecast.history, spec.event_selector
            if events_from_cluster:
                cluster_events = cluster.traffic_events(ns)
    assert query is not None
    if step is not None:
        grid = parse_duration(step, field="--step")
        if grid <= timedelta(0):
            raise InputError(f"must be positive, got {step!r}", field="--step")
    t0, t1 = _window(since, start, end, grid, history)

    client = PrometheusClient(PrometheusConfig(url=prometheus, timeout=parse_duration(timeout, field="--timeout")))
    try:
        try:
            client.query(query, t1.to_pydatetime())  # a bad query or URL fails here, before any chunk
            with Progress(TextColumn("[bold]export[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err_console, transient=True) as bar:
                task = bar.add_task(f"{t0:%Y-%m-%d %H:%M} .. {t1:%Y-%m-%d %H:%M} every {format_duration(grid)}",
                                    total=None)
                series = backfill(client, query, t0.to_pydatetime(), t1.to_pydatetime(), grid,
                                  progress=lambda done, total: bar.update(task, completed=done, total=total))
        except (PermanentError, RetryableError) as exc:
            if isinstance(exc, InputError):
                raise
            raise _prometheus_error(exc, prometheus, query) from None
    finally:
        client.close()
    known = int(series.notna().sum())
    if known == 0:
        raise InputError(f"{query!r} returned no samples between {t0.isoformat()} and {t1.isoformat()}",
                         field="--query")
    series.name = out.stem
    events: list[Event] | None = None
    if events_from_cluster:
        events = [e for e in selected_events(cluster_events, selector) if e.start < t1 and e.end > t0]
    elif events_from_casino is not None:
        events = _casino_events(events_from_casino, t0, t1)
    atomic_write(out, lambda tmp: write_series(series, tmp))
    if events is not None and events_out is not None:
        chosen = sorted(events, key=lambda e: (e.start, e.name))
        atomic_write(events_out, lambda tmp: write_events(chosen, tmp))
    summary = {"out": str(out), "query": query, "start": t0.isoformat(), "end": t1.isoformat(),
               "step": format_duration(grid), "steps": len(series), "gaps": len(series) - known,
               "events_out": None if events is None else str(events_out),
               "events": None if events is None else len(events)}
    if json_out:
        typer.echo(json.dumps(summary))
        return
    console.print(f"wrote {out}: {len(series)} steps of {format_duration(grid)} from {t0:%Y-%m-%d %H:%M}Z, "
                  f"{len(series) - known} empty (gaps)"
                  + ("" if events is None else f"; {events_out}: {len(events)} events"),
                  highlight=False, markup=False, soft_wrap=True)


def _casino_events(url: str, t0: pd.Timestamp, t1: pd.Timestamp) -> list[Event]:
    import httpx

    from controller.operator.calendar_sync import fetch_calendar

    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            entries = fetch_calendar(http, t0.to_pydatetime(), t1.to_pydatetime())
    except RetryableError as exc:
        raise InputError(str(exc).split(": ", 1)[-1], field="--events-from-casino") from None
    return [Event(name=e.name, kind=e.kind, start=pd.Timestamp(e.start).tz_convert("UTC"),
                  end=pd.Timestamp(e.end).tz_convert("UTC"), expected_lift=e.expected_lift) for e in entries]
