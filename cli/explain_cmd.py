"""CLI command: ``pitboss explain POLICY``, the recent decisions of one policy, with their reasons and numbers.

Reads three places and merges them by time: the policy's status
(``status.decisions``: the last decisions that moved replicas or changed
reason, with the forecast peak, its time, the quantile, the observed demand
and the event that drove each, kept by ``controller.operator.status``), the
Kubernetes Events on the policy (why replicas moved, in the operator's
words; incidents firing and resolving), and optionally, with
``--prometheus``, the operator's own metrics (desired replicas over
``--since``, decisions by reason, the forecast error now). One line a
decision, e.g. "at 19:50 pre-scaled 4 -> 11: forecast p95 1,610 req/s at
20:05 for tournament friday-frenzy (ScaleUpForecast)". Registered on the
root app by ``cli.app``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from cli.cluster import ContextOption, KubeconfigOption, connected, event_time
from cli.common import console, guarded
from controller.core.durations import format_duration, parse_duration
from controller.core.headroom import label as quantile_label
from controller.errors import InputError, PermanentError, RetryableError

EPILOG = """Example: pitboss explain slots -n casino --last 20

Example: pitboss explain slots -n casino --prometheus http://prometheus:9090 --since 6h --json"""


@dataclass
class Line:
    """One entry of the explanation (also its --json object)."""

    time: str
    source: str  # status | event
    text: str
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _clock(at: pd.Timestamp, same_day: bool) -> str:
    return f"{at:%H:%M}" if same_day else f"{at:%m-%d %H:%M}"


def sentence(d: dict[str, Any], mode: str, same_day: bool) -> str:
    """'pre-scaled 4 -> 11: forecast p95 1,610 req/s at 20:05 for tournament friday-frenzy (ScaleUpForecast)'."""
    at = pd.Timestamp(d["time"])
    before, after = int(d.get("fromReplicas", 0)), int(d.get("toReplicas", 0))
    event, event_start = d.get("event"), d.get("eventStart")
    if after > before:
        ahead = event is not None and event_start is not None and pd.Timestamp(event_start) > at
        verb = "pre-scaled" if ahead else "scaled"
    elif after < before:
        verb = "scaled down"
    else:
        verb = "held"
    if mode != "Active" and after != before:
        verb = f"would have {verb}"
    head = f"{verb} {before} -> {after}" if after != before else f"{verb} {after}"
    parts = []
    if d.get("forecastPeak") is not None:
        q = d.get("headroomQuantile")
        label = quantile_label(float(q)) if q is not None else "peak"  # p95, q0.973, q0.999
        when = ""
        if d.get("forecastPeakAt"):
            when = f" at {_clock(pd.Timestamp(d['forecastPeakAt']), same_day)}"
        parts.append(f"forecast {label} {_num(float(d['forecastPeak']))} req/s{when}"
                     + (f" for {event}" if event is not None else ""))
    elif event is not None:
        parts.append(f"for {event}")
    if d.get("observedDemand") is not None:
        parts.append(f"observed {_num(float(d['observedDemand']))} req/s")
    if not parts:
        parts.append(str(d.get("message", "")).split(";")[0])
    text = f"{head}: {'; '.join(p for p in parts if p)}"
    if d.get("databaseReplicas") is not None:
        text += f"; {d['databaseReplicas']} read replicas"
    return f"{text} ({d.get('reason', '?')})"


def lines_for(policy: dict[str, Any], events: list[dict[str, Any]]) -> list[Line]:
    """Status decisions and the Events on the policy, oldest first; a scale Event joins its decision."""
    status = policy.get("status") or {}
    mode = str(status.get("mode") or (policy.get("spec") or {}).get("mode") or "Active")
    decisions = [d for d in status.get("decisions") or [] if isinstance(d, dict) and d.get("time")]
    stamps = [pd.Timestamp(d["time"]) for d in decisions]
    stamps += [pd.Timestamp(event_time(e)[0]) for e in events if event_time(e)[0]]
    same_day = len({s.date() for s in stamps}) <= 1
    out: dict[str, Line] = {}
    for d in decisions:
        out[f"{pd.Timestamp(d['time']).isoformat()}|{d.get('reason')}"] = Line(
            time=pd.Timestamp(d["time"]).isoformat(), source="status", text=sentence(d, mode, same_day),
            reason=str(d.get("reason", "")), data=dict(d))
    for e in events:
        stamp = event_time(e)[0]
        if not stamp:
            continue
        at = pd.Timestamp(stamp).isoformat()
        reason, message = str(e.get("reason", "")), str(e.get("message", ""))
        joined = out.get(f"{at}|{reason}")
        if joined is not None and e.get("type") == "Normal":
            joined.data["event_message"] = message  # the operator's own words for the same decision
            continue
        kind = "incident" if "id=" in message else str(e.get("type", "Normal")).lower()
        out[f"{at}|{reason}|{e['metadata'].get('name')}"] = Line(time=at, source="event", reason=reason,
                                                                 text=f"{kind} {reason}: {message}",
                                                                 data={"type": e.get("type"), "count": e.get("count")})
    return sorted(out.values(), key=lambda line: line.time)


def operator_metrics(url: str, namespace: str, name: str, since: timedelta, now: pd.Timestamp) -> dict[str, Any]:
    """Desired replicas over the window, decisions by reason in it and the forecast error, from Prometheus."""
    from controller.sources.prometheus import PrometheusClient, PrometheusConfig

    sel = f'namespace="{namespace}",policy="{name}"'
    window = f"{max(60, round(since.total_seconds()))}s"
    client = PrometheusClient(PrometheusConfig(url=url, timeout=timedelta(seconds=10), attempts=2))
    try:
        step = timedelta(seconds=max(15, round(since.total_seconds() / 1000)))
        start = (now - pd.Timedelta(since)).to_pydatetime()
        desired = client.query_range(f"pitboss_operator_desired_replicas{{{sel}}}", start, now.to_pydatetime(), step)
        reasons = client.query(f"sum by (reason) (increase(pitboss_operator_decisions_total{{{sel}}}[{window}]))",
                               now.to_pydatetime())
        error = client.query(f"pitboss_operator_forecast_error_ratio{{{sel}}}", now.to_pydatetime())
    except (PermanentError, RetryableError) as exc:
        text = str(exc)
        if isinstance(exc, RetryableError) and "cannot connect" not in text and "timed out" not in text:
            raise PermanentError(text) from None  # Prometheus answered 5xx: a runtime failure
        raise InputError(f"{url}: {text.split(': ', 1)[-1]}", field="--prometheus") from None
    finally:
        client.close()
    changes: list[dict[str, Any]] = []
    if desired:
        _, times, values = desired[0]
        for i in range(1, len(values)):
            if values[i] != values[i - 1]:
                changes.append({"time": pd.Timestamp(times[i], unit="s", tz="UTC").isoformat(),
                                "from": int(values[i - 1]), "to": int(values[i])})
    return {
        "since": format_duration(since),
        "desired_min": int(min(desired[0][2])) if desired and len(desired[0][2]) else None,
        "desired_max": int(max(desired[0][2])) if desired and len(desired[0][2]) else None,
        "desired_changes": changes,
        "decisions_by_reason": {labels.get("reason", "?"): round(v) for labels, v in sorted(
            reasons, key=lambda r: -r[1]) if v > 0},
        "forecast_error_ratio": error[0][1] if error else None,
    }


def register(app: typer.Typer) -> None:
    """Add ``pitboss explain`` to the root app."""

    @app.command("explain", epilog=EPILOG)
    @guarded
    def explain(
        policy: str = typer.Argument(..., metavar="POLICY", help="the ScalingPolicy's name"),
        namespace: str | None = typer.Option(None, "--namespace", "-n", help="its namespace (default: the "
                                             "kubeconfig context's)"),
        last: int = typer.Option(20, "--last", help="show the last N entries"),
        prometheus: str | None = typer.Option(None, "--prometheus", envvar="PITBOSS_PROMETHEUS_URL",
                                              help="also read the operator's metrics from this Prometheus"),
        since: str = typer.Option("6h", "--since", help="with --prometheus: the window of the metrics"),
        json_out: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
        kubeconfig: Path | None = KubeconfigOption,
        context: str | None = ContextOption,
    ) -> None:
        """The recent decisions of one policy and why, with their numbers."""
        if last < 1:
            raise InputError(f"expected a positive number, got {last}", field="--last")
        window = parse_duration(since, field="--since")
        if window <= timedelta(0):
            raise InputError(f"must be positive, got {since!r}", field="--since")
        if prometheus is not None and not prometheus.startswith(("http://", "https://")):
            raise InputError(f"expected an http:// or https:// URL, got {prometheus!r}", field="--prometheus")
        with connected(kubeconfig, context) as cluster:
            ns = namespace or cluster.default_namespace()
            obj = cluster.policy(ns, policy)
            events = cluster.object_events(ns, "ScalingPolicy", policy)
        lines = lines_for(obj, events)[-last:]
        status = obj.get("status") or {}
        target = ((obj.get("spec") or {}).get("targetRef") or {}).get("name", "?")
        metrics = None
        if prometheus is not None:
            metrics = operator_metrics(prometheus, ns, policy, window, pd.Timestamp.now(tz="UTC"))
        if json_out:
            typer.echo(json.dumps({"namespace": ns, "policy": policy, "target": target,
                                   "last_decision": status.get("lastDecision"), "entries": [asdict(x) for x in lines],
                                   "metrics": metrics}))
            return
        _print(ns, policy, target, status, lines, metrics)


def _print(ns: str, policy: str, target: str, status: dict[str, Any], lines: list[Line],
           metrics: dict[str, Any] | None) -> None:
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    say(f"{ns}/{policy} scales {target}: {status.get('currentReplicas', '?')} now, "
        f"{status.get('desiredReplicas', '?')} desired (times UTC)")
    if not lines:
        say("no decisions recorded yet (the operator writes them to status.decisions as it decides)")
    same_day = len({pd.Timestamp(x.time).date() for x in lines}) <= 1
    for x in lines:
        say(f"at {_clock(pd.Timestamp(x.time), same_day)} {x.text}")
        if x.data.get("event_message"):
            say(f"        event: {x.data['event_message']}")
    last = status.get("lastDecision") or {}
    if last.get("message"):
        say(f"now: {last.get('reason')}: {last['message']}")
    if metrics is not None:
        reasons = ", ".join(f"{k} {v:,}" for k, v in metrics["decisions_by_reason"].items()) or "none"
        say(f"operator metrics, last {metrics['since']}: desired {metrics['desired_min']}..{metrics['desired_max']} "
            f"replicas, {len(metrics['desired_changes'])} change(s); decisions by reason: {reasons}")
        for c in metrics["desired_changes"][-10:]:
            say(f"  {pd.Timestamp(c['time']):%m-%d %H:%M} desired {c['from']} -> {c['to']}")
        if metrics["forecast_error_ratio"] is not None:
            say(f"  forecast error now: {metrics['forecast_error_ratio']:.1%} of observed demand")
