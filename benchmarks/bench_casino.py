"""Benchmark the casino API: spins per second and latency for ONE uvicorn worker (``make bench-casino``).

The server is ``pitboss casino serve`` in a subprocess; the load generator is
another process on loopback (raw HTTP/1.1 keep-alive connections over asyncio
streams, a fixed number of connections, bounded in time). Cases:

* loadgen ceiling: the same generator against a trivial raw-asyncio responder,
  to show the generator is not the bottleneck;
* /healthz on the casino worker: the framework's own ceiling (the baseline the
  spin rates are quoted against);
* spins on PostgreSQL, spins on SQLite (within the admission cap);
* spins on PostgreSQL at twice the admission cap: rejected share, p99 of accepted.

Goal from the issue: >= 1,000 spins/s per worker on PostgreSQL with p99 < 50 ms.
Numbers depend on the machine and on what else runs on it; the table says what
was measured, nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
PITBOSS = str(Path(sys.executable).parent / "pitboss")
POSTGRES_URL = os.environ.get("PITBOSS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DURATION = float(os.environ.get("PITBOSS_BENCH_SECONDS", "12"))
CONNECTIONS = int(os.environ.get("PITBOSS_BENCH_CONNECTIONS", "16"))
PLAYERS = 16
console = Console(width=150)


# ---------------------------------------------------------------- load generator (its own process)

async def _connection(host: str, port: int, requests: list[bytes], deadline: float, out: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while time.perf_counter() < deadline:
            payload = requests[i % len(requests)].replace(b"@KEY@", f"{secrets.token_hex(8)}".encode())
            i += 1
            start = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            elapsed = time.perf_counter() - start
            out["status"][status] = out["status"].get(status, 0) + 1
            if status < 500:
                out["accepted"].append(elapsed)
            else:
                out["rejected"].append(elapsed)
    finally:
        writer.close()


def _request(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *[f"{k}: {v}" for k, v in headers.items()]]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"status": {}, "accepted": [], "rejected": []}
    tokens = spec.get("tokens") or [""]
    per_conn = []
    for c in range(spec["connections"]):
        headers = {"Idempotency-Key": "@KEY@"}
        if spec["path"] != "/healthz":
            headers["Authorization"] = f"Bearer {tokens[c % len(tokens)]}"
        body = spec.get("body", "").encode()
        per_conn.append([_request(spec["method"], spec["path"], headers, body)])
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    deadline = start + spec["seconds"]
    await asyncio.gather(*(_connection(spec["host"], spec["port"], reqs, deadline, out) for reqs in per_conn))
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    out["wall"] = wall
    out["cpu"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return out


async def _echo_server(port_file: str) -> None:
    """A trivial HTTP/1.1 responder: the ceiling the load generator can drive on this machine."""
    response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        await reader.readexactly(int(line[15:]))
                writer.write(response)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


def run_loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the generator in a separate process and collect its JSON result."""
    proc = subprocess.run([sys.executable, __file__, "--loadgen", json.dumps(spec)], capture_output=True, text=True,
                          timeout=spec["seconds"] + 60, check=True)
    return json.loads(proc.stdout)


# ---------------------------------------------------------------- servers

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Worker:
    """The uvicorn worker under test: its port, and its CPU use between two marks."""

    def __init__(self, port: int, pid: int) -> None:
        self.port = port
        self.pid = pid

    def measure(self, spec: dict[str, Any]) -> dict[str, Any]:
        before = cpu_seconds(self.pid)
        result = run_loadgen(spec)
        result["server_cpu"] = cpu_seconds(self.pid) - before
        return result


@contextlib.contextmanager
def casino(args: list[str]) -> Iterator[Worker]:
    port = _free_port()
    env = {**os.environ, "PITBOSS_CASINO_SCRYPT_N": "1024", "PITBOSS_CASINO_MAX_AMOUNT": str(10**12)}
    proc = subprocess.Popen([PITBOSS, "casino", "serve", "--port", str(port), "--log-level", "warning", *args],
                            env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"casino did not start: {args}")
            time.sleep(0.1)
        yield Worker(port, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([sys.executable, __file__, "--echo", str(port_file)])
        try:
            for _ in range(100):
                if port_file.exists() and port_file.read_text():
                    break
                time.sleep(0.05)
            yield int(port_file.read_text())
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def players(port: int) -> list[str]:
    tokens = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        run = secrets.token_hex(3)
        for i in range(PLAYERS):
            name = f"bench{run}{i}"
            c.post("/v1/players", json={"username": name, "password": "bench-password"}).raise_for_status()
            token = c.post("/v1/sessions", json={"username": name, "password": "bench-password"}).json()["token"]
            c.post("/v1/wallet/deposits", json={"amount": 10**11},
                   headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "seed"}).raise_for_status()
            tokens.append(token)
    return tokens


def spin_spec(port: int, tokens: list[str], connections: int) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "method": "POST", "path": "/v1/games/slots/spins",
            "body": '{"bet": 1}', "tokens": tokens, "connections": connections, "seconds": DURATION}


def summarize(name: str, result: dict[str, Any], cap: int | None, connections: int) -> dict[str, Any]:
    acc = sorted(result["accepted"])
    total = len(acc) + len(result["rejected"])

    def q(p: float) -> float | None:
        return acc[min(len(acc) - 1, int(p * len(acc)))] * 1000 if acc else None

    return {"case": name, "connections": connections, "cap": cap, "rate": len(acc) / result["wall"],
            "total_rate": total / result["wall"], "p50": q(0.5), "p99": q(0.99),
            "rejected": len(result["rejected"]) / total if total else 0.0,
            "loadgen_cpu": result["cpu"] / result["wall"], "status": result["status"],
            "server_cpu_ms": (result["server_cpu"] * 1000 / total) if total and "server_cpu" in result else None}


async def drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def postgres_reachable() -> bool:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    return True


def main() -> None:
    rows: list[dict[str, Any]] = []
    conn = CONNECTIONS
    console.print(f"[bold]bench-casino[/]: 1 uvicorn worker, {conn} keep-alive connections, {DURATION:.0f} s per case")
    with echo_server() as port:
        spec = {"host": "127.0.0.1", "port": port, "method": "POST", "path": "/echo", "body": '{"bet": 1}',
                "tokens": ["x"], "connections": conn, "seconds": min(DURATION, 5)}
        rows.append(summarize("loadgen ceiling (trivial responder)", run_loadgen(spec), None, conn))
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        with casino(["--database-url", sqlite_url, "--max-in-flight", str(4 * conn)]) as worker:
            spec = {"host": "127.0.0.1", "port": worker.port, "method": "GET", "path": "/healthz",
                    "connections": conn, "seconds": min(DURATION, 6)}
            rows.append(summarize("GET /healthz (framework baseline)", worker.measure(spec), 4 * conn, conn))
            tokens = players(worker.port)
            rows.append(summarize("spins, SQLite", worker.measure(spin_spec(worker.port, tokens, conn)), 4 * conn,
                                  conn))
    if not postgres_reachable():
        console.print(f"[yellow]PostgreSQL at {POSTGRES_URL} is unreachable: its cases are skipped[/]")
        render(rows)
        return
    for label, cap, connections in (("spins, PostgreSQL", 4 * conn, conn),
                                    ("spins, PostgreSQL, 2x admission cap", conn, 2 * conn)):
        schema = f"pitboss_bench_{secrets.token_hex(4)}"
        try:
            with casino(["--database-url", POSTGRES_URL, "--db-schema", schema, "--max-in-flight", str(cap),
                         "--db-pool-size", "20"]) as worker:
                tokens = players(worker.port)
                result = worker.measure(spin_spec(worker.port, tokens, connections))
                rows.append(summarize(label, result, cap, connections))
        finally:
            asyncio.run(drop_schema(schema))
    render(rows)


def render(rows: list[dict[str, Any]]) -> None:
    baseline = next(r for r in rows if r["case"].startswith("GET /healthz"))["rate"]
    table = Table(title="Casino API, one uvicorn worker (loopback; load generator in its own process)")
    for col in ("case", "conns", "cap", "accepted/s", "x healthz", "p50 ms", "p99 ms", "rejected", "loadgen CPU",
                "worker CPU ms/req", "req/s per worker core"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in rows:
        fmt = (lambda v: "-" if v is None else f"{v:.1f}")  # noqa: E731
        table.add_row(r["case"], str(r["connections"]), str(r["cap"] or "-"), f"{r['rate']:.0f}",
                      f"{r['rate'] / baseline:.2f}", fmt(r["p50"]), fmt(r["p99"]), f"{r['rejected']:.1%}",
                      f"{r['loadgen_cpu']:.0%}", fmt(r["server_cpu_ms"]),
                      "-" if not r["server_cpu_ms"] else f"{1000 / r['server_cpu_ms']:.0f}")
    console.print(table)
    pg = next((r for r in rows if r["case"] == "spins, PostgreSQL"), None)
    if pg is None:
        return
    verdict = "met" if pg["rate"] >= 1000 and (pg["p99"] or 1e9) < 50 else "NOT met"
    console.print(f"Goal (>= 1,000 spins/s on PostgreSQL, p99 < 50 ms): {verdict} "
                  f"({pg['rate']:.0f}/s, p99 {pg['p99']:.1f} ms). Load average now: {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} CPUs; the generator, the worker and PostgreSQL share them. "
                  "'req/s per worker core' = 1000 / worker CPU ms per request (all requests, rejected included; "
                  "PostgreSQL's own CPU is not counted): what one uncontended core could serve.")
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_casino.json").write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--echo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        print(json.dumps(asyncio.run(_loadgen(json.loads(args.loadgen)))))
    elif args.echo:
        asyncio.run(_echo_server(args.echo))
    else:
        main()
