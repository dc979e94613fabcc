"""CLI command: ``pitboss simulate`` — replay a trace against scaling policies (issue 4).

Reads a series CSV (and optionally an events CSV), runs the chosen policies
through controller.simulate, shows a progress bar on stderr and a table (or
one JSON object with --json) on stdout, and optionally writes a PNG plot. A
forecast policy that ran steps without a forecast, or whose model fell back
to seasonal-naive, gets a warning on stderr (the table's "no forecast" column
and the JSON's ``steps_without_forecast`` / ``fallback`` carry the numbers).
``--sweep`` runs each policy over its own knob instead (cli.simulate_sweep):
the frontier of unserved demand against replica-hours, PNG and HTML.
Bad input: one line ``error: ...`` naming the flag or field, exit code 2.
Registered on the root app by cli.app.
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import console, err_console, guarded
from controller.core.durations import format_duration, parse_duration
from controller.errors import InputError
from controller.simulate.costs import SimCosts
from controller.simulate.engine import SimConfig, SimResult, make_context, simulate
from controller.simulate.policies import POLICY_NAMES, PolicySettings, build, parse_policies
from controller.simulate.predictive import Oracle
from controller.traceio import read_events, read_series


def _number(
    text: str, flag: str, *, integer: bool = False, positive: bool = False, minimum: float | None = None
) -> float:
    """Parse a numeric flag; InputError naming the flag when it is not one."""
    kind = "an integer" if integer else "a number"
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise InputError(f"expected {kind}, got {text!r}", field=flag) from None
    if not math.isfinite(value):
        raise InputError(f"expected a finite number, got {text!r}", field=flag)
    if positive and value <= 0:
        raise InputError(f"must be positive, got {text!r}", field=flag)
    if minimum is not None and value < minimum:
        raise InputError(f"must be >= {minimum:g}, got {text!r}", field=flag)
    return value


def _check_plot_path(plot: Path | None) -> None:
    if plot is None:
        return
    if plot.suffix.lower() != ".png":
        raise InputError(f"expected a .png file name, got {str(plot)!r}", field="--plot")
    if not plot.parent.exists() or not plot.parent.is_dir():
        raise InputError(f"directory {str(plot.parent)!r} does not exist", field="--plot")


def _costs(unserved: str | None, replica_hour: str | None, quantile: str, sweep: bool) -> SimCosts | None:
    """--cost-unserved and --cost-replica-hour: both or neither, positive, not with --quantile or --sweep."""
    if unserved is None and replica_hour is None:
        return None
    if unserved is None or replica_hour is None:
        missing = "--cost-unserved" if unserved is None else "--cost-replica-hour"
        raise InputError("needed with " + ("--cost-replica-hour" if unserved is None else "--cost-unserved"),
                         field=missing)
    if sweep:
        raise InputError("not with --sweep (the sweep varies the quantile itself)", field="--cost-unserved")
    if quantile.strip() != "0.95":
        raise InputError("not with --cost-unserved and --cost-replica-hour (the costs choose the quantile)",
                         field="--quantile")
    return SimCosts(
        unserved=_number(unserved, "--cost-unserved", positive=True),
        replica_hour=_number(replica_hour, "--cost-replica-hour", positive=True),
    )


def _bills(result: SimResult, costs: SimCosts, step: timedelta) -> dict[str, object]:
    """The ``costs`` object of --json: the newsvendor quantile and each policy's bill."""
    bills = {}
    for name, run in result.runs.items():
        unserved, replicas = costs.bill(result.demand, run.ready, run.asked, result.capacity_per_replica, step)
        bills[name] = {"unserved": unserved, "replicas": replicas, "total": unserved + replicas}
    return {
        "unserved": costs.unserved,
        "replica_hour": costs.replica_hour,
        "newsvendor_quantile": costs.ratio(result.capacity_per_replica, step),
        "bill": bills,
    }


def _table(result: SimResult, costs: SimCosts | None = None, step: timedelta | None = None) -> Table:
    table = Table(title=f"{result.series_name}: {len(result.demand)} steps, lead {result.lead_steps} step(s)",
                  show_edge=False)
    # "no forecast": steps a forecast policy decided without a forecast covering now (and its fallback).
    forecasting = any(run.steps_without_forecast is not None for run in result.runs.values())
    # Two-line headers: the table (with "no forecast") fits an 80-column terminal.
    columns = ["policy", "unserved", "short\nsteps", "replica\nhours", "peak", "scale\nchanges", "vs\noracle"]
    extra = [*(["no\nforecast"] if forecasting else []), *(["cost"] if costs is not None else [])]
    for column in [*columns, *extra]:
        table.add_column(column, justify="left" if column == "policy" else "right", no_wrap=True)
    for name, run in result.runs.items():
        m = run.metrics
        cost = "-" if m.cost_vs_oracle is None else f"{m.cost_vs_oracle:.3f}x"
        blind = "-" if run.steps_without_forecast is None else str(run.steps_without_forecast)
        if run.fallback:
            blind += f" ({run.fallback})"
        cells = [f"{m.unserved_fraction:.4%}", str(m.underprovisioned_steps), f"{m.replica_hours:,.1f}",
                 str(m.peak_replicas), str(m.scale_changes), cost]
        if forecasting:
            cells.append(blind)
        if costs is not None and step is not None:
            unserved, replicas = costs.bill(result.demand, run.ready, run.asked, result.capacity_per_replica, step)
            cells.append(f"{unserved + replicas:,.2f}")
        table.add_row(name, *cells)
    return table


# One paragraph per example; a long one continues its shell line with a backslash.
EPILOG = """Example: pitboss simulate trace.csv --events events.csv --capacity-per-replica 500 --lead-time 10m \\
  --test-days 2 --policies hpa,pitboss,oracle

Example: pitboss simulate trace.csv --events events.csv --capacity-per-replica 500 --lead-time 10m \\
  --test-days 2 --sweep --plot frontier.png --html frontier.html"""


def _warn_blind(result: SimResult) -> None:
    """A stderr warning per forecast policy that fell back or decided steps without a forecast."""
    for run in result.runs.values():
        if run.fallback:
            err_console.print(f"warning: {run.name}: its model fell back to {run.fallback} (see the notes)",
                              markup=False, highlight=False, soft_wrap=True)
        if run.steps_without_forecast:
            steps = f"{run.steps_without_forecast} of {len(result.demand)} steps"
            err_console.print(f"warning: {run.name}: {steps} ran without a forecast",
                              markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``pitboss simulate`` to the root app."""

    @app.command("simulate", epilog=EPILOG)
    @guarded
    def simulate_cmd(
        series_path: Annotated[Path, typer.Argument(metavar="SERIES.csv", help="demand trace (timestamp,value)")],
        capacity_per_replica: Annotated[
            str, typer.Option("--capacity-per-replica", help="demand per step one replica serves")
        ],
        lead_time: Annotated[str, typer.Option("--lead-time", help="time for a new replica to be ready, e.g. 10m")],
        events_path: Annotated[
            Path | None, typer.Option("--events", help="known events CSV (start,end,kind,name)")
        ] = None,
        min_replicas: Annotated[str, typer.Option("--min", help="minReplicas")] = "1",
        max_replicas: Annotated[str, typer.Option("--max", help="maxReplicas")] = "500",
        policies: Annotated[str, typer.Option("--policies", help="comma-separated policies")] = ",".join(POLICY_NAMES),
        test_days: Annotated[
            str, typer.Option("--test-days", help="simulate the last N days; earlier data is history")
        ] = "7",
        as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
        plot: Annotated[Path | None, typer.Option("--plot", help="write a PNG plot here")] = None,
        hpa_target: Annotated[str, typer.Option("--hpa-target", help="HPA target utilization (0-1]")] = "0.8",
        keda_min: Annotated[
            str | None, typer.Option("--keda-min", help="keda-cron minReplicas during events (default: derived)")
        ] = None,
        quantile: Annotated[
            str, typer.Option("--quantile", help="forecast headroom quantile: 0.5, 0.9, 0.95 or 0.99")
        ] = "0.95",
        refit_every: Annotated[
            str, typer.Option("--refit-every", help="refit the forecasters this often (auto: 1h, at least 24 steps)")
        ] = "auto",
        sweep: Annotated[
            bool, typer.Option("--sweep", help="each policy over its knob: the frontier of unserved demand "
                               "against replica-hours (--plot PNG, --html)")
        ] = False,
        hpa_targets: Annotated[
            str | None, typer.Option("--hpa-targets", help="--sweep: HPA target utilizations (default 0.3..0.9)")
        ] = None,
        quantiles: Annotated[
            str | None, typer.Option("--quantiles", help="--sweep: headroom quantiles (default 0.5,0.9,0.95,0.99)")
        ] = None,
        keda_floors: Annotated[
            str, typer.Option("--keda-floors", help="--sweep: keda-cron event floors in replicas (auto: around "
                              "what the history's peak needs)")
        ] = "auto",
        html: Annotated[Path | None, typer.Option("--html", help="--sweep: write an HTML report here")] = None,
        cost_unserved: Annotated[
            str | None, typer.Option("--cost-unserved", help="money per unserved demand unit: with "
                                     "--cost-replica-hour, size at the newsvendor quantile instead of --quantile")
        ] = None,
        cost_replica_hour: Annotated[
            str | None, typer.Option("--cost-replica-hour", help="money per replica-hour (with --cost-unserved)")
        ] = None,
    ) -> None:
        """Replay a recorded trace against hpa, keda-cron, holt-winters, pitboss and the oracle.

        Also the forecasting baselines mstl, autoets, prophet and gbm (the bench extra), through the same decide().
        """
        names = parse_policies(policies)
        lead = parse_duration(lead_time, field="--lead-time")
        refit = None if refit_every.strip().lower() == "auto" else parse_duration(refit_every, field="--refit-every")
        if refit is not None and refit.total_seconds() <= 0:
            raise InputError("must be positive", field="--refit-every")
        config = SimConfig(
            capacity_per_replica=_number(capacity_per_replica, "--capacity-per-replica", positive=True),
            lead_time=lead,
            min_replicas=int(_number(min_replicas, "--min", integer=True, minimum=0)),
            max_replicas=int(_number(max_replicas, "--max", integer=True, minimum=1)),
            test_days=_number(test_days, "--test-days", positive=True),
        )
        target = _number(hpa_target, "--hpa-target", positive=True)
        if target > 1:
            raise InputError(f"expected a utilization in (0, 1], got {hpa_target!r}", field="--hpa-target")
        q = _number(quantile, "--quantile")
        if q not in (0.5, 0.9, 0.95, 0.99):
            raise InputError(f"expected one of 0.5, 0.9, 0.95, 0.99, got {quantile!r}", field="--quantile")
        costs = _costs(cost_unserved, cost_replica_hour, quantile, sweep)
        settings = PolicySettings(
            hpa_target=target,
            keda_min=None if keda_min is None else int(_number(keda_min, "--keda-min", integer=True, minimum=0)),
            headroom_quantile=q,
            refit_every=refit,
            costs=costs,
        )
        _check_plot_path(plot)
        if not sweep and (html is not None or hpa_targets is not None or quantiles is not None):
            raise InputError("only with --sweep", field="--html" if html is not None else
                             "--hpa-targets" if hpa_targets is not None else "--quantiles")
        if sweep:
            from cli.simulate_sweep import build_spec, run_sweep

            spec = build_spec(names, hpa_targets, quantiles, keda_floors, settings)
            series = read_series(series_path)
            events = read_events(events_path) if events_path is not None else []
            make_context(series, events, config)  # validates --test-days against the series first
            run_sweep(series, events, config, spec, as_json=as_json, plot=plot, html=html)
            return
        series = read_series(series_path)
        events = read_events(events_path) if events_path is not None else []
        ctx = make_context(series, events, config)  # validates --test-days against the series first
        scalers = [build(name, settings) for name in names]

        with (
            warnings.catch_warnings(),
            Progress(
                TextColumn("[bold]simulate[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
                disable=as_json and not err_console.is_terminal,
            ) as bar,
        ):
            warnings.simplefilter("ignore")  # model fallbacks warn once per refit; the notes carry them
            task = bar.add_task(", ".join(names), total=ctx.steps * len(scalers))
            result = simulate(
                series,
                events,
                config,
                scalers,
                progress=lambda n: bar.advance(task, n),
                reference=Oracle(),
            )
        _warn_blind(result)
        if plot is not None:
            from controller.simulate.plot import plot_result

            plot_result(result, plot)
        if as_json:
            out = result.to_json()
            if costs is not None:
                out["costs"] = _bills(result, costs, ctx.step)
            typer.echo(json.dumps(out))
            return
        console.print(_table(result, costs, ctx.step))
        if costs is None:
            headroom = f"forecast quantile p{round(q * 100)}"
        else:
            ratio = costs.ratio(config.capacity_per_replica, ctx.step)
            headroom = (f"newsvendor quantile {ratio:.4g} from costs ({costs.unserved:g} per unserved unit, "
                        f"{costs.replica_hour:g} per replica-hour)")
        console.print(
            f"capacity {config.capacity_per_replica:g}/replica, lead {format_duration(lead)}, "
            f"replicas {config.min_replicas}..{config.max_replicas}, HPA target {target:g}, "
            f"{headroom}, refit every {'auto' if refit is None else format_duration(refit)}",
            highlight=False,
        )
        for run in result.runs.values():
            for note in run.notes:
                console.print(f"note ({run.name}): {note}", highlight=False, markup=False)
        if plot is not None:
            console.print(f"plot written to {plot}", highlight=False)
