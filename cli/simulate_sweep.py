"""``pitboss simulate --sweep``: run the sweep with a progress bar, print its tables, write the PNG and HTML.

Called by ``cli.simulate_cmd`` when ``--sweep`` is given; the sweep itself is
``controller.simulate.sweep`` and the figure ``controller.simulate.frontier_plot``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import atomic_write, console, err_console
from controller.core.durations import format_duration
from controller.errors import InputError
from controller.simulate.engine import SimConfig
from controller.simulate.sweep import HPA_TARGETS, QUANTILES, SweepResult, SweepSpec, sweep, total_steps
from forecasting.base import Event

POINT_HEADERS = ["policy", "knob", "value", "unserved", "replica-h", "vs oracle", "peak", "on frontier"]
SAVING_HEADERS = ["hpa target", "hpa unserved", "hpa replica-h", "pitboss replica-h", "pitboss vs hpa",
                  "pitboss read at"]


def numbers(text: str, flag: str, *, integer: bool = False) -> tuple[float, ...]:
    """'0.3,0.5' -> (0.3, 0.5); InputError naming the flag."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(float(int(part)) if integer else float(part))
        except ValueError:
            kind = "integers" if integer else "numbers"
            raise InputError(f"expected comma-separated {kind}, got {part!r}", field=flag) from None
    if not out:
        raise InputError("expected at least one value", field=flag)
    return tuple(sorted(set(out)))


def build_spec(policies: Sequence[str], hpa_targets: str | None, quantiles: str | None, keda_floors: str,
               base: object) -> SweepSpec:
    """The SweepSpec from the flags (ValueError naming the flag on a bad value)."""
    from controller.simulate.policies import PolicySettings

    assert isinstance(base, PolicySettings)
    floors = None if keda_floors.strip().lower() == "auto" else tuple(
        int(f) for f in numbers(keda_floors, "--keda-floors", integer=True))
    return SweepSpec(
        policies=tuple(policies),
        hpa_targets=HPA_TARGETS if hpa_targets is None else numbers(hpa_targets, "--hpa-targets"),
        quantiles=QUANTILES if quantiles is None else numbers(quantiles, "--quantiles"),
        keda_floors=floors,
        settings=base,
    )


def _pct(x: float) -> str:
    return f"{x:.4%}"


def point_rows(result: SweepResult) -> list[list[str]]:
    return [[p.policy, p.knob, p.label, _pct(p.unserved_fraction), f"{p.replica_hours:,.1f}",
             "-" if p.cost_vs_oracle is None else f"{p.cost_vs_oracle:.3f}x", str(p.peak_replicas),
             "yes" if p.on_frontier else "dominated"] for p in result.points]


def saving_rows(result: SweepResult) -> list[list[str]]:
    pitboss = {p.label: p for p in result.of("pitboss")}
    rows = []
    for s in result.savings:
        if s.how == "cheapest":
            (label,) = s.pitboss_points
            how = f"{label} ({_pct(pitboss[label].unserved_fraction)} unserved)"
        elif s.how == "interpolated":
            how = " .. ".join(s.pitboss_points)
        else:
            how = "safer than every quantile"
        rows.append([f"{s.hpa_target:g}", _pct(s.unserved_fraction), f"{s.hpa_replica_hours:,.1f}",
                     "-" if s.pitboss_replica_hours is None else f"{s.pitboss_replica_hours:,.1f}",
                     "-" if s.saving is None else f"{-s.saving:+.1%}", how])  # -64.3%: that much cheaper
    return rows


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i in (0, 1, len(headers) - 1) else "right")
    for row in rows:
        table.add_row(*row)
    return table


def run_sweep(series: pd.Series, events: list[Event], config: SimConfig, spec: SweepSpec, *, as_json: bool,
              plot: Path | None, html: Path | None) -> None:
    """Everything ``--sweep`` prints and writes."""
    if html is not None and (html.suffix.lower() not in (".html", ".htm") or not html.resolve().parent.is_dir()):
        raise InputError(f"expected a .html file in an existing directory, got {str(html)!r}", field="--html")
    total = total_steps(series, events, config, spec)
    with (
        warnings.catch_warnings(),
        Progress(TextColumn("[bold]sweep[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
                 TimeElapsedColumn(), console=err_console, transient=True,
                 disable=as_json and not err_console.is_terminal) as bar,
    ):
        warnings.simplefilter("ignore")  # model fallbacks warn once per refit; the notes carry them
        task = bar.add_task(", ".join(spec.policies), total=total)
        result = sweep(series, events, config, spec, progress=lambda n: bar.advance(task, n))
    caption = (f"capacity {config.capacity_per_replica:g}/replica, lead {format_duration(config.lead_time)}, "
               f"replicas {config.min_replicas}..{config.max_replicas}, last {config.test_days:g} days, keda-cron "
               f"at HPA target {spec.settings.hpa_target:g}")
    points, savings = point_rows(result), saving_rows(result)
    if plot is not None:
        from controller.simulate.frontier_plot import write_png

        atomic_write(plot, lambda tmp: write_png(result, tmp))
    if html is not None:
        from controller.simulate.frontier_plot import write_html

        atomic_write(html, lambda tmp: write_html(result, tmp, points, savings, (POINT_HEADERS, SAVING_HEADERS),
                                                  caption))
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    console.print(_table(f"{result.series_name}: {result.steps} steps, each policy over its knob", POINT_HEADERS,
                         points))
    if savings:
        console.print(_table("pitboss against hpa at hpa's unserved demand", SAVING_HEADERS, savings))
    console.print(caption, highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    for path in (plot, html):
        if path is not None:
            console.print(f"wrote {path}", highlight=False)
