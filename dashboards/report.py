"""The HTML report of a local run: one self-contained file (plots embedded as PNG data URIs).

Called by ``pitboss demo`` after the run (``write_report(record, path)``), and
by anyone holding a ``run.json`` (``RunRecord.load``). Contents: the summary
numbers (unserved share, replica-seconds, pre-scale lead before the event),
a plot of demand vs ready capacity vs the forecast band with the event spans
shaded, a plot of ready and desired replicas with unserved requests, the
decision table (reason and message of every change), the incidents, and the
replica start/stop log. Rendering uses matplotlib's Agg backend: no display.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from controller.local.recorder import RunRecord, Summary

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.good{color:#1a7f37}.bad{color:#cf222e}img{max-width:100%}.muted{color:#666;font-size:.9em}
"""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _shade_events(ax: plt.Axes, record: RunRecord, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    labelled = False
    for ev in record.events:
        if ev.end <= lo or ev.start >= hi:
            continue
        ax.axvspan(max(ev.start, lo), min(ev.end, hi), color="#1f77b4", alpha=0.12,
                   label=None if labelled else "known event")
        labelled = True


def demand_plot(record: RunRecord) -> str:
    """Demand vs ready capacity vs the forecast band, events shaded (PNG data URI)."""
    cycles = record.cycles
    fig, ax = plt.subplots(figsize=(12, 4.6), dpi=100)
    if not cycles:
        ax.text(0.5, 0.5, "no cycles recorded", ha="center", transform=ax.transAxes)
        return _png(fig)
    lo, hi = cycles[0].t, max(cycles[-1].t, cycles[0].t + pd.Timedelta(minutes=1))
    plan = [p for p in record.plan if lo - pd.Timedelta(minutes=1) <= p[0] <= hi]
    if plan:
        ts = [p[0] for p in plan]
        ax.fill_between(ts, [p[1] for p in plan], [p[3] for p in plan], step="post", color="#ff7f0e", alpha=0.18,
                        label="forecast at start: q50..q99")
        ax.step(ts, [p[2] for p in plan], where="post", color="#ff7f0e", linewidth=1, label="forecast at start: q95")
    times = [c.t for c in cycles]
    q95 = [c.q95 if c.q95 is not None else float("nan") for c in cycles]
    ax.plot(times, q95, color="#d95f02", linestyle=":", linewidth=1.2, label="forecast q95 used by decide")
    trace = [(t, v) for t, v in record.trace if lo - pd.Timedelta(minutes=1) <= t <= hi]
    ax.plot([t for t, _ in trace], [v for _, v in trace], color="black", linewidth=1.3, label="demand (trace)")
    observed = [c.observed if c.observed is not None else float("nan") for c in cycles]
    ax.plot(times, observed, color="#555", linestyle="--", linewidth=0.9, label="demand observed (scrape)")
    cap = record.capacity
    ax.step(times, [c.ready * cap for c in cycles], where="post", color="#2ca02c", linewidth=2,
            label=f"ready capacity (ready replicas x {cap:g} req/s)")
    _shade_events(ax, record, lo, hi)
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0)
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel("simulated time (UTC)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncol=4, frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title("Demand, forecast and ready capacity")
    return _png(fig)


def replicas_plot(record: RunRecord) -> str:
    """Ready vs desired replicas, unserved requests per cycle (PNG data URI)."""
    cycles = record.cycles
    fig, ax = plt.subplots(figsize=(12, 3.2), dpi=100)
    if not cycles:
        return _png(fig)
    times = [c.t for c in cycles]
    ax.step(times, [c.desired for c in cycles], where="post", color="#1f77b4", linestyle="--", label="desired")
    ax.step(times, [c.ready for c in cycles], where="post", color="#2ca02c", linewidth=2, label="ready")
    for c in cycles:
        if c.scaled:
            ax.axvline(c.t, color="#999", linewidth=0.6, alpha=0.6)
    _shade_events(ax, record, times[0], times[-1])
    ax.set_ylabel("replicas")
    ax.set_ylim(0, max(max(c.desired for c in cycles), max(c.ready for c in cycles)) + 1)
    ax2 = ax.twinx()
    width = (times[-1] - times[0]) / max(len(times), 1) * 0.8
    ax2.bar(times, [c.unserved for c in cycles], width=width, color="#d62728", alpha=0.5, label="unserved")
    ax2.set_ylabel("unserved requests / cycle")
    ax2.set_ylim(bottom=0, top=max(5, max(c.unserved for c in cycles) * 1.2))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    lines = ax.get_legend_handles_labels()
    bars = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + bars[0], lines[1] + bars[1], loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("Replicas (vertical lines: scaling actions) and unserved requests")
    return _png(fig)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[bool] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            cls = ' class="num"' if i < len(numeric) and numeric[i] else ""
            cells.append(f"<td{cls}>{html.escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _lead(value: float | None) -> str:
    if value is None:
        return "never"
    return f"{value:.1f} min before start" if value >= 0 else f"{-value:.1f} min AFTER start"


def _ahead(value: float | None) -> str:
    if value is None:
        return "not reached"
    return f"{value:.1f} min ahead" if value >= 0 else f"{-value:.1f} min BEHIND"


def summary_rows(record: RunRecord, s: Summary) -> list[tuple[str, str]]:
    """(label, value) rows shared by the report and the CLI table."""
    meta = record.meta
    rows = [
        ("requests offered / served / unserved", f"{s.offered} / {s.served} / {s.unserved}"),
        ("unserved share", f"{s.unserved_share:.2%}"),
        ("replica-seconds (real) / replica-minutes (simulated)",
         f"{s.replica_seconds:.0f} / {s.replica_minutes_sim:.0f}"),
        ("peak ready replicas", str(s.peak_ready)),
        ("scale-ups / scale-downs", f"{s.scale_ups} / {s.scale_downs}"),
    ]
    for ev in record.events:
        rows.append((f"{ev.name}: first scale-up decided", _lead(s.scale_up_lead_min.get(ev.name))))
        rows.append((f"{ev.name}: first extra replica ready", _lead(s.ready_lead_min.get(ev.name))))
        rows.append((f"{ev.name}: ready capacity ahead of its demand (worst step)",
                     _ahead(s.ahead_of_demand_min.get(ev.name))))
    startups = meta.get("startup_seconds") or []
    if startups:
        rows.append(("replica start-up, spawn to /readyz (s)",
                     f"min {min(startups):.2f}, max {max(startups):.2f} over {len(startups)}"))
    rows += [
        ("lead time given to the policy (simulated)", f"{meta.get('lead_time_min', 0):.0f} min"),
        ("capacity per replica (policy / admission limit)",
         f"{meta.get('capacity_per_replica', 0):g} / {meta.get('replica_capacity', 0):g} req/s"),
        ("incident transitions", str(s.incidents)),
    ]
    return rows


def render_html(record: RunRecord) -> str:
    """The report as one HTML string."""
    s = record.summary()
    meta = record.meta
    share_cls = "good" if s.unserved_share < 0.01 else "bad"
    title = "Pitboss local run"
    decisions = [
        (c.t.strftime("%H:%M:%S"), f"{c.elapsed:.1f}", f"{c.current} -> {c.desired}" if c.scaled else str(c.desired),
         c.ready, c.reason, c.message)
        for c in record.decisions()
    ]
    incidents = [
        (pd.Timestamp(i["at"]).strftime("%H:%M:%S"), i["state"], i["alertname"], i["severity"], i["summary"],
         i["description"])
        for i in record.incidents
    ]
    replica_log = [(pd.Timestamp(e["t"]).strftime("%H:%M:%S"), f"{e['elapsed']:.2f}", e["replica"], e["what"],
                    e["detail"]) for e in record.replica_events]
    events = [(e.name, e.kind, e.start.strftime("%H:%M"), e.end.strftime("%H:%M"),
               "-" if e.expected_lift is None else f"{e.expected_lift:g}x") for e in record.events]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{title}</title><style>{CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p class='muted'>Simulated window {html.escape(str(meta.get('live_start', '')))} to"
        f" {html.escape(str(meta.get('live_end', '')))}, replayed at {meta.get('speed', 0):g}x"
        f" ({meta.get('duration', 0):g} s real) against local casino replicas on 127.0.0.1;"
        f" forecaster <b>{html.escape(str(meta.get('model', '')))}</b>, one decision every"
        f" {meta.get('sync_period_s', 0) / 60:g} simulated minute(s).</p>",
        f"<p>Unserved share: <b class='{share_cls}'>{s.unserved_share:.2%}</b></p>",
        "<h2>Summary</h2>",
        _table(("measure", "value"), summary_rows(record, s)),
        "<h2>Known events</h2>",
        _table(("name", "kind", "start", "end", "expected lift"), events),
        "<h2>Demand, forecast and capacity</h2>",
        f"<img alt='demand vs ready capacity vs forecast band' src='{demand_plot(record)}'>",
        f"<img alt='ready and desired replicas' src='{replicas_plot(record)}'>",
        "<h2>Decisions</h2><p class='muted'>Every cycle that changed the replica count or the reason"
        " (simulated time; elapsed = real seconds).</p>",
        _table(("time", "elapsed s", "replicas", "ready", "reason", "message"), decisions, (False, True)),
        "<h2>Incidents</h2>",
        _table(("time", "state", "alert", "severity", "summary", "description"), incidents)
        if incidents else "<p>No incidents.</p>",
        "<h2>Replica processes</h2>",
        _table(("time", "elapsed s", "replica", "what", "detail"), replica_log, (False, True, True)),
        "<h2>Policy</h2>",
        f"<pre>{html.escape(str(meta.get('policy', {})))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(record: RunRecord, path: Path) -> Path:
    """Write the report to ``path`` (atomically) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render_html(record), encoding="utf-8")
    tmp.replace(path)
    return path
