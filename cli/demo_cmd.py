"""CLI command: ``pitboss demo``, the main job on embedded defaults (``make demo``).

Registered on the root app by ``cli.app``. Interim version (issue 2), until
the control plane lands: starts the casino API under uvicorn in-process on
SQLite under ``var/demo/`` and a free loopback port, drives a short bounded
burst of real HTTP traffic (players, deposits, a tournament, spins, then a
burst at three times the admission cap), and prints what /metrics shows.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from rich.progress import Progress
from rich.table import Table

from casino.app import create_app
from casino.config import CasinoSettings
from cli.common import console, guarded

PASSWORD = "demo-password"


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets, +Inf last."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * ((rank - below) / (count - below) if count > below else 0)
        lower, below = upper, count
    return lower


def summarize(metrics_text: str) -> dict[str, Any]:
    """The demo's view of /metrics: requests, latency quantiles, bets, wallet, admission."""
    requests: dict[tuple[str, str, str], float] = {}
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    plain: dict[str, float] = {}
    wallet: dict[tuple[str, str], float] = {}
    rejections: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == "casino_http_requests_total":
                requests[(s.labels["route"], s.labels["method"], s.labels["status"])] = s.value
            elif s.name == "casino_http_request_duration_seconds_bucket":
                key = (s.labels["route"], s.labels["method"])
                buckets.setdefault(key, []).append((float(s.labels["le"]), s.value))
            elif s.name == "casino_wallet_transactions_total":
                wallet[(s.labels["type"], s.labels["outcome"])] = s.value
            elif s.name == "casino_admission_rejections_total":
                rejections[s.labels["route"]] = s.value
            elif s.name.startswith("casino_") and not s.labels:
                plain[s.name] = s.value
            elif s.name in ("casino_bets_total", "casino_bet_amount_minor_total", "casino_win_amount_minor_total"):
                plain[s.name] = plain.get(s.name, 0.0) + s.value
    latency = {key: (histogram_quantile(0.5, b), histogram_quantile(0.99, b)) for key, b in buckets.items()}
    return {"requests": requests, "latency": latency, "plain": plain, "wallet": wallet, "rejections": rejections}


async def _traffic(base: str, admin: str, players: int, spins: int, cap: int, progress: Progress) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=4 * cap, max_keepalive_connections=4 * cap)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        task = progress.add_task("players: register, log in, deposit", total=players)
        tokens: list[dict[str, str]] = []
        run = secrets.token_hex(3)
        for i in range(players):
            name = f"demo{run}{i}"
            (await client.post("/v1/players", json={"username": name, "password": PASSWORD})).raise_for_status()
            r = await client.post("/v1/sessions", json={"username": name, "password": PASSWORD})
            h = {"Authorization": f"Bearer {r.raise_for_status().json()['token']}"}
            (await client.post("/v1/wallet/deposits", json={"amount": 50_000},
                               headers={**h, "Idempotency-Key": f"dep-{name}"})).raise_for_status()
            tokens.append(h)
            progress.advance(task)
        now = datetime.now(UTC)
        admin_h = {"Authorization": f"Bearer {admin}"}
        r = await client.post("/v1/admin/events", headers=admin_h, json={
            "name": "Demo Spin Cup", "kind": "tournament", "start": (now - timedelta(minutes=5)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(), "expected_lift": 1.5, "services": ["casino-api"]})
        tournament = r.raise_for_status().json()["id"]
        await client.post("/v1/admin/events", headers=admin_h, json={
            "name": "Weekend promotion", "kind": "promotion", "start": (now + timedelta(days=1)).isoformat(),
            "end": (now + timedelta(days=2)).isoformat(), "expected_lift": 3.0, "services": ["casino-api"]})
        for h in tokens:
            (await client.post(f"/v1/tournaments/{tournament}/entries", headers=h)).raise_for_status()

        async def spin_wave(label: str, slug: str, concurrency: int, total: int) -> dict[int, int]:
            task = progress.add_task(label, total=total)
            gate = asyncio.Semaphore(concurrency)
            statuses: dict[int, int] = {}

            async def one(i: int) -> None:
                async with gate:
                    r = await client.post("/v1/games/slots/spins", json={"bet": 100},
                                          headers={**tokens[i % len(tokens)], "Idempotency-Key": f"{slug}-{i}"})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                progress.advance(task)

            await asyncio.gather(*(one(i) for i in range(total)))
            return statuses

        steady = await spin_wave("spins within the admission cap", "steady", max(1, cap // 2), spins)
        if set(steady) != {201}:
            raise RuntimeError(f"spins within the admission cap failed: statuses {steady}")
        burst = await spin_wave(f"burst at 3x the admission cap ({3 * cap} in flight)", "burst", 3 * cap, spins)
        board = (await client.get(f"/v1/tournaments/{tournament}/leaderboard", params={"limit": 3})).json()
        metrics = (await client.get("/metrics")).text
        events = (await client.get("/v1/events", params={"to": (now + timedelta(days=7)).isoformat()})).json()
    return {"steady": steady, "burst": burst, "leaderboard": board, "metrics": metrics, "events": events}


async def run_demo(data_dir: Path, players: int, spins: int, cap: int) -> dict[str, Any]:
    import uvicorn

    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    admin = secrets.token_urlsafe(16)
    settings = CasinoSettings(database_url=f"sqlite:///{data_dir / 'casino.db'}", admin_token=SecretStr(admin),
                              max_in_flight=cap, tournament_refresh_seconds=0.5)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                           lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if serving.done() or time.monotonic() > deadline:
                raise RuntimeError("the casino API did not start (see the log above)")
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with Progress(console=console, transient=True) as progress:
            result = await _traffic(f"http://127.0.0.1:{port}", admin, players, spins, cap, progress)
        result["audit"] = await app.state.casino.ledger.audit()
        result["port"] = port
    finally:
        server.should_exit = True
        await serving
    return result


def render(result: dict[str, Any], cap: int) -> None:
    view = summarize(result["metrics"])
    table = Table(title="Requests by route and status (casino_http_requests_total)")
    for col in ("route", "method", "status", "requests", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right" if col not in ("route", "method") else "left")
    shown: set[tuple[str, str]] = set()
    for (route, method, status), count in sorted(view["requests"].items()):
        p50, p99 = view["latency"].get((route, method), (None, None))
        fmt = (lambda v: "-" if v is None else f"{v * 1000:.1f}")  # noqa: E731
        first = (route, method) not in shown  # the histogram is per route and method, all statuses together
        shown.add((route, method))
        table.add_row(route, method, status, f"{count:.0f}", fmt(p50) if first else "", fmt(p99) if first else "")
    console.print(table)
    p = view["plain"]
    bets, wagered, won = p.get("casino_bets_total", 0), p.get("casino_bet_amount_minor_total", 0), \
        p.get("casino_win_amount_minor_total", 0)
    games = Table(title="Slots and wallet")
    games.add_column("metric")
    games.add_column("value", justify="right")
    games.add_row("bets (casino_bets_total)", f"{bets:.0f}")
    games.add_row("wagered / won (minor units)", f"{wagered:.0f} / {won:.0f}")
    games.add_row("observed return to player", f"{won / wagered:.1%}" if wagered else "-")
    for (kind, outcome), count in sorted(view["wallet"].items()):
        games.add_row(f"wallet {kind} {outcome}", f"{count:.0f}")
    games.add_row("ledger: sum of all entries (must be 0)", str(result["audit"]["sum_of_entries"]))
    games.add_row("ledger: player balances = player entries",
                  str(result["audit"]["sum_of_player_balances"] == result["audit"]["sum_of_player_entries"]))
    console.print(games)
    adm = Table(title=f"Admission control (cap {cap} in flight per replica)")
    adm.add_column("wave")
    adm.add_column("statuses")
    adm.add_row("within the cap", ", ".join(f"{k}: {v}" for k, v in sorted(result["steady"].items())))
    adm.add_row("burst at 3x the cap", ", ".join(f"{k}: {v}" for k, v in sorted(result["burst"].items())))
    adm.add_row("casino_admission_rejections_total", f"{sum(view['rejections'].values()):.0f}")
    console.print(adm)
    board = ", ".join(f"#{row['rank']} {row['username']} {row['score']}" for row in result["leaderboard"])
    console.print(f"Tournament leaderboard: {board or '(no wins yet)'}")
    console.print(f"Calendar (next 7 days): {', '.join(e['name'] + ' (' + e['kind'] + ')' for e in result['events'])}")


def register(app: typer.Typer) -> None:
    """Add ``pitboss demo`` to the root app."""

    @app.command("demo")
    @guarded
    def demo(
        data_dir: Annotated[Path, typer.Option(help="where the demo's SQLite database lives (wiped first)")] = Path(
            "var/demo"),
        players: Annotated[int, typer.Option(min=1, max=100, help="players to register")] = 6,
        spins: Annotated[int, typer.Option(min=1, max=20_000, help="spins per wave (two waves)")] = 300,
        max_in_flight: Annotated[int, typer.Option(min=1, max=1000, help="the admission cap")] = 8,
    ) -> None:
        """Run the casino API on SQLite, drive a short burst of traffic, show what /metrics says."""
        console.print(f"[bold]Pitboss demo[/]: casino API on SQLite under {data_dir}/ (interim demo, issue 2)")
        result = asyncio.run(run_demo(data_dir, players, spins, max_in_flight))
        console.print(f"casino API served on 127.0.0.1:{result['port']}; it has been stopped.")
        render(result, max_in_flight)
