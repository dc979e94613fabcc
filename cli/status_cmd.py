"""CLI command: ``pitboss status``, what every ScalingPolicy is doing right now.

One row per policy: mode, current/desired/ready replicas, database read
replicas, the last decision's reason, the next known event (name, kind,
starts in), the next forecast peak and the replicas it needs, firing
incidents and the conditions that are not OK. From the cluster (the
policies' status, their TrafficEvents and the incident Events on them, read
with the official client like ``pitboss operator run``) or from a local
run's record (``--run var/demo/run.json``, see ``cli.status_run``).
``--watch`` redraws with rich's Live every ``--interval`` (``--count``
bounds it); ``--json`` prints one JSON object (one per refresh with
``--watch``). Registered on the root app by ``cli.app``.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import RenderableType
from rich.live import Live
from rich.table import Table

from cli.cluster import ContextOption, KubeconfigOption, connected, event_time, selected_events
from cli.common import console, guarded, parse_timestamp
from controller.core.durations import format_duration, parse_duration
from controller.errors import InputError
from controller.operator.resources import parse_policy_spec
from forecasting.base import Event

# A condition is OK at this status; anything else is shown.
OK_STATUS = {"Ready": "True", "AbleToScale": "True", "MetricsAvailable": "True", "ForecastReady": "True",
             "CapacityLimited": "False", "InvalidSpec": "False"}
INCIDENT_ID = re.compile(r"\bid=([0-9a-f]+)\b")


@dataclass
class StatusRow:
    """One policy's line of ``pitboss status`` (also its ``--json`` object)."""

    namespace: str
    name: str
    target: str
    mode: str
    current: int | None = None
    desired: int | None = None
    ready: int | None = None
    db_current: int | None = None
    db_desired: int | None = None
    reason: str | None = None
    decided_at: str | None = None
    message: str | None = None
    next_event: dict[str, Any] | None = None  # name, kind, start, end, starts_in_seconds
    next_peak: dict[str, Any] | None = None  # time, demand, replicas
    incidents: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def starts_in(start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> str:
    """'in 2h10m', or 'now (ends in 40m)' for an event under way."""
    if start <= now:
        return f"now (ends in {_span(end - now)})"
    return f"in {_span(start - now)}"


def _span(delta: pd.Timedelta | timedelta) -> str:
    minutes = max(0, round(pd.Timedelta(delta).total_seconds() / 60))
    return format_duration(timedelta(minutes=minutes)) if minutes else "<1m"


def next_event(events: list[Event], now: pd.Timestamp) -> dict[str, Any] | None:
    """The event under way (earliest start first) or else the next to start; None when none is ahead."""
    ahead = sorted((e for e in events if e.end > now), key=lambda e: (e.start, e.name))
    if not ahead:
        return None
    e = ahead[0]
    return {"name": e.name, "kind": e.kind, "start": e.start.isoformat(), "end": e.end.isoformat(),
            "starts_in_seconds": round((e.start - now).total_seconds()), "expected_lift": e.expected_lift}


def firing_incidents(events: list[dict[str, Any]]) -> list[str]:
    """Alert names still firing, from the incident Events on one policy (fire: Warning, resolve: '...Resolved')."""
    state: dict[str, tuple[str, bool]] = {}
    for ev in sorted(events, key=event_time):
        match = INCIDENT_ID.search(str(ev.get("message", "")))
        if match is None:
            continue
        reason = str(ev.get("reason", ""))
        if ev.get("type") == "Warning":
            state[match.group(1)] = (reason, True)
        elif reason.endswith("Resolved"):
            state[match.group(1)] = (reason.removesuffix("Resolved"), False)
    return sorted({name for name, firing in state.values() if firing})


def not_ok(status: dict[str, Any], generation: int) -> list[str]:
    """'Type=Status (Reason): message' of every condition that is not OK, plus a stale status."""
    out = []
    if not status:
        return ["NoStatus: the operator has not reconciled this policy yet"]
    for cond in status.get("conditions") or []:
        ctype, value = str(cond.get("type", "")), str(cond.get("status", ""))
        if OK_STATUS.get(ctype, "True") != value:
            out.append(f"{ctype}={value} ({cond.get('reason', '')}): {cond.get('message', '')}")
    seen = status.get("observedGeneration")
    if isinstance(seen, int) and generation and seen < generation:
        out.append(f"Stale: status is for generation {seen}, the spec is at {generation}")
    return out


def policy_row(obj: dict[str, Any], traffic: list[dict[str, Any]], incident_events: list[dict[str, Any]],
               now: pd.Timestamp) -> StatusRow:
    """A row from one ScalingPolicy object, the TrafficEvents of its namespace and the Events on it."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    selector = None
    with contextlib.suppress(ValueError):  # InvalidSpec is among the conditions; every event is shown
        selector = parse_policy_spec(spec).event_selector
    events = selected_events(traffic, selector)
    last = status.get("lastDecision") or {}
    ref = spec.get("targetRef") or {}
    return StatusRow(
        namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")),
        target=f"{ref.get('kind', '?')}/{ref.get('name', '?')}",
        mode=str(status.get("mode") or spec.get("mode") or "Active"),
        current=status.get("currentReplicas"), desired=status.get("desiredReplicas"),
        ready=status.get("readyReplicas"), db_current=status.get("databaseCurrentReplicas"),
        db_desired=status.get("databaseDesiredReplicas"), reason=last.get("reason"), decided_at=last.get("time"),
        message=last.get("message"), next_event=next_event(events, now),
        next_peak=_peak(status.get("nextPeak")), incidents=firing_incidents(incident_events),
        problems=not_ok(status, int(meta.get("generation") or 0)),
    )


def _peak(peak: Any) -> dict[str, Any] | None:
    if not isinstance(peak, dict) or peak.get("time") is None:
        return None
    return {"time": peak["time"], "demand": peak.get("demand"), "replicas": peak.get("replicas")}


def cluster_rows(kubeconfig: Path | None, context: str | None, namespace: str | None,
                 at: pd.Timestamp | None = None) -> tuple[pd.Timestamp, list[StatusRow]]:
    """Every policy's row, read from the cluster now ("starts in" counted from ``at``, default now)."""
    with connected(kubeconfig, context) as cluster:
        policies = cluster.policies(namespace)
        traffic = cluster.traffic_events(namespace)
        incident_events = cluster.object_events(namespace, "ScalingPolicy")
    now = at if at is not None else pd.Timestamp(datetime.now(UTC))
    rows = []
    for obj in policies:
        ns, name = obj["metadata"].get("namespace"), obj["metadata"].get("name")
        same_ns = [t for t in traffic if t["metadata"].get("namespace") == ns]
        mine = [e for e in incident_events if (e.get("involvedObject") or {}).get("name") == name
                and (e.get("involvedObject") or {}).get("namespace", ns) == ns]
        rows.append(policy_row(obj, same_ns, mine, now))
    return now, rows


def _n(value: Any) -> str:
    return "-" if value is None else str(value)


def _ago(at: str | None, now: pd.Timestamp) -> str:
    if not at:
        return ""
    return f" {_span(now - pd.Timestamp(at))} ago"


def render(now: pd.Timestamp, rows: list[StatusRow], source: str) -> RenderableType:
    """The rich table (conditions by type and reason; --json carries their messages)."""
    table = Table(title=f"pitboss status: {len(rows)} polic{'y' if len(rows) == 1 else 'ies'} ({source}, "
                        f"{now:%Y-%m-%d %H:%M:%S}Z)", title_justify="left",
                  caption="replicas: current/desired/ready; db: read replicas current/desired; --json has the "
                          "conditions' reasons and messages", caption_justify="left")
    for column in ("policy", "mode", "replicas", "db", "last decision", "next event", "next peak", "incidents",
                   "not OK"):
        table.add_column(column)
    for r in rows:
        event = "-"
        if r.next_event:
            e = r.next_event
            event = f"{e['kind']} {e['name']} {starts_in(pd.Timestamp(e['start']), pd.Timestamp(e['end']), now)}"
        peak = "-"
        if r.next_peak:
            p = r.next_peak
            demand = "?" if p.get("demand") is None else f"{float(p['demand']):,.0f}/s"
            peak = f"{demand} -> {_n(p.get('replicas'))} at {pd.Timestamp(p['time']):%m-%d %H:%M}Z"
        db = "-" if r.db_current is None and r.db_desired is None else f"{_n(r.db_current)}/{_n(r.db_desired)}"
        table.add_row(f"{r.namespace}/{r.name}", r.mode, f"{_n(r.current)}/{_n(r.desired)}/{_n(r.ready)}", db,
                      f"{r.reason or '-'}{_ago(r.decided_at, now)}", event, peak,
                      ", ".join(r.incidents) or "-", "\n".join(p.split(" ", 1)[0].rstrip(":") for p in r.problems)
                      or "-")
    return table


def as_json(now: pd.Timestamp, rows: list[StatusRow], source: str) -> str:
    return json.dumps({"now": now.isoformat(), "source": source, "policies": [asdict(r) for r in rows]})


EPILOG = """Example: pitboss status -n casino

Example: pitboss status --watch --interval 5s

Example: pitboss status --run var/demo/run.json --json"""


def register(app: typer.Typer) -> None:
    """Add ``pitboss status`` to the root app."""

    @app.command("status", epilog=EPILOG)
    @guarded
    def status(
        namespace: str | None = typer.Option(None, "--namespace", "-n", help="only this namespace (default: all)"),
        run: Path | None = typer.Option(None, "--run", help="a local run's record (run.json of pitboss demo) "
                                        "instead of the cluster"),
        watch: bool = typer.Option(False, "--watch", "-w", help="redraw every --interval until Ctrl-C"),
        interval: str = typer.Option("5s", "--interval", help="time between redraws with --watch"),
        count: int | None = typer.Option(None, "--count", help="with --watch: stop after this many redraws"),
        json_out: bool = typer.Option(False, "--json", help="one JSON object on stdout (one per redraw)"),
        kubeconfig: Path | None = KubeconfigOption,
        context: str | None = ContextOption,
        now: str | None = typer.Option(None, "--now", hidden=True, help="count 'starts in' from this time "
                                       "(reading a recorded or test cluster)"),
    ) -> None:
        """One row per ScalingPolicy: replicas, last decision, next event and peak, incidents, problems."""
        every = parse_duration(interval, field="--interval")
        if every.total_seconds() < 0.05:
            raise InputError(f"expected at least 50ms, got {interval!r}", field="--interval")
        if count is not None and count < 1:
            raise InputError(f"expected a positive number, got {count}", field="--count")
        if run is not None and namespace is not None:
            raise InputError("a run record has one policy; drop -n", field="--namespace")
        at = None if now is None else parse_timestamp(now, "--now")

        def read() -> tuple[pd.Timestamp, list[StatusRow], str]:
            if run is not None:
                from cli.status_run import run_rows

                stamp, rows = run_rows(run)
                return stamp, rows, f"run {run}"
            stamp, rows = cluster_rows(kubeconfig, context, namespace, at)
            return stamp, rows, "cluster"

        if not watch:
            stamp, rows, source = read()
            if json_out:
                typer.echo(as_json(stamp, rows, source))
            else:
                console.print(render(stamp, rows, source))
            return
        _watch(read, every.total_seconds(), count, json_out)


def _watch(read: Callable[[], tuple[pd.Timestamp, list[StatusRow], str]], every: float, count: int | None,
           json_out: bool) -> None:
    shown = 0
    try:
        if json_out:
            while count is None or shown < count:
                if shown:
                    time.sleep(every)
                typer.echo(as_json(*read()))
                shown += 1
            return
        with Live(render(*read()), console=console, auto_refresh=False) as live:
            shown = 1
            while count is None or shown < count:
                time.sleep(every)
                live.update(render(*read()), refresh=True)
                shown += 1
    except KeyboardInterrupt:
        return
