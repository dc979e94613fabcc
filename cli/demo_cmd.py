"""CLI command: ``pitboss demo``, the main job on embedded defaults (``make demo``).

Registered on the root app by ``cli.app``. Runs ``controller.local.run``: local
casino replicas (uvicorn processes on 127.0.0.1, one SQLite file), a
synthesized casino trace with one tournament spike replayed in compressed
time by a bounded load generator, the calendar forecaster, ``decide`` and the
local incident log; then prints the summary and writes ``<out>/report.html``
(and ``run.json``). See docs/demo.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli.common import console, fail, guarded
from controller.local.recorder import CycleRecord
from controller.local.run import Hooks, RunConfig, run_local
from dashboards.report import summary_rows, write_report


def register(app: typer.Typer) -> None:
    """Add ``pitboss demo`` to the root app."""

    @app.command("demo")
    @guarded
    def demo(
        duration: Annotated[float, typer.Option(help="real seconds of live replay (10-900)")] = 90.0,
        speed: Annotated[float, typer.Option(help="simulated seconds per real second (1-600)")] = 60.0,
        out: Annotated[Path, typer.Option(help="output directory (its run files are replaced)")] = Path("var/demo"),
        max_replicas: Annotated[int, typer.Option(help="most local replicas (1-8)")] = 4,
        seed: Annotated[int, typer.Option(help="seed of the synthesized trace")] = 7,
        metrics_port: Annotated[int | None, typer.Option(help="serve the loop's pitboss_operator_* metrics on"
                                                         " 127.0.0.1:PORT (docs/dashboards.md)")] = None,
        scrape_targets: Annotated[Path | None, typer.Option(help="keep a Prometheus file_sd JSON of the replicas"
                                                            " and the metrics endpoint here")] = None,
    ) -> None:
        """Pre-scale local casino replicas ahead of a known tournament, then report (var/demo/report.html)."""
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out: expected a directory, got the file {out}")
        config = RunConfig(out=out, duration=duration, speed=speed, max_replicas=max_replicas, seed=seed,
                           metrics_port=metrics_port, scrape_targets=scrape_targets)
        console.print(f"[bold]Pitboss demo[/]: {config.live_minutes} simulated minutes in {duration:g}s"
                      f" ({speed:g}x); replicas admit {config.max_in_flight} requests x {config.service_time:g}s"
                      f" = {config.max_in_flight / config.service_time:g} req/s, sized at {config.capacity:g} req/s")
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console,
                      transient=True) as progress:
            task = progress.add_task("starting", total=duration)

            def on_cycle(c: CycleRecord) -> None:
                observed = "?" if c.observed is None else f"{c.observed:.0f}"
                progress.update(task, completed=c.elapsed, description=(
                    f"{c.t:%H:%M} demand {observed} req/s, ready {c.ready}/{c.desired} {c.reason}"))

            def on_stage(text: str) -> None:
                progress.console.print(f"- {text}")

            try:
                record = run_local(config, Hooks(stage=on_stage, cycle=on_cycle))
            except KeyboardInterrupt:
                raise fail("interrupted; every replica was stopped", 130) from None
        report = write_report(record, out / "report.html")
        table = Table(title="Pitboss local run")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for label, value in summary_rows(record, record.summary()):
            table.add_row(label, value)
        console.print(table)
        decisions = Table(title="Scaling decisions")
        for col in ("time", "replicas", "reason"):
            decisions.add_column(col)
        for c in record.decisions():
            if c.scaled:
                decisions.add_row(f"{c.t:%H:%M}", f"{c.current} -> {c.desired}", c.reason)
        console.print(decisions)
        console.print(f"report: {report}")
        console.print(f"run data: {out / 'run.json'}; incidents: pitboss incidents list --db {out / 'incidents.db'}")
