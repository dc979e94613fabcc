"""``pitboss casino serve``: flag validation through CliRunner, and the real server in a subprocess.

The commands and the curl session documented in docs/casino.md are executed
here as written (only the port is swapped for a free one, and PostgreSQL runs
in a throwaway schema set through the environment).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from pydantic import SecretStr
from typer.testing import CliRunner

from casino.config import CasinoSettings
from cli.app import app
from cli.casino_cmd import settings_env
from tests.casino.serving import casino_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "casino.md"
DOC_TOKEN = "change-me-to-32-or-more-random-characters"  # the admin token of the documented session
runner = CliRunner()


def bash_blocks(section: str) -> list[str]:
    text = DOC.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", body, flags=re.S)


def serve_commands() -> list[list[str]]:
    lines = [line for block in bash_blocks("Serving it") for line in block.splitlines()]
    return [shlex.split(line)[3:] for line in lines if line.startswith("pitboss casino serve")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--database-url", "mysql://db"], "database_url"),
        (["--max-in-flight", "0"], "max_in_flight"),
        (["--redis-url", "http://x"], "redis_url"),
        (["--db-schema", "Bad Schema"], "db_schema"),
        (["--log-level", "loud"], "--log-level"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["casino", "serve", *args])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_bad_port_is_refused_by_typer() -> None:
    result = runner.invoke(app, ["casino", "serve", "--port", "70000"])
    assert result.exit_code == 2


def test_settings_survive_the_trip_through_the_environment(tmp_path: Path) -> None:
    s = CasinoSettings(database_url="postgresql://u@h/db", redis_url="redis://h:1/0", admin_token=SecretStr("t" * 32),
                       max_in_flight=7, db_schema="s1", read_database_url=["postgresql://r1/db", "postgresql://r2/db"])
    assert CasinoSettings.from_env(settings_env(s)) == s
    (tmp_path / "token").write_text("f" * 40)
    from_file = CasinoSettings(admin_token_file=tmp_path / "token")
    env = settings_env(from_file)
    assert "f" * 40 not in env.values()  # the workers read the file; the token stays out of the environment
    assert CasinoSettings.from_env(env) == from_file


def run_session(base: str) -> str:
    script = "set -euo pipefail\n" + "\n".join(bash_blocks("Example session"))
    done = subprocess.run(["bash", "-c", script], env={**os.environ, "CASINO": base}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_session_output(out: str) -> None:
    assert '"username":"alice"' in out
    assert '"type":"deposit","amount":5000' in out
    assert '"spin_id":' in out and '"bet":100' in out
    assert '"name":"Friday Spin Cup","kind":"tournament"' in out
    assert 'casino_bets_total{game="slots"} 1.0' in out


def test_documented_sqlite_command_serves_the_documented_session(tmp_path: Path) -> None:
    """The first documented command, run in an empty directory: SQLite under var/, nothing else needed."""
    args = serve_commands()[0]
    assert "--database-url" not in args
    with casino_server(args, env={"PITBOSS_CASINO_ADMIN_TOKEN": DOC_TOKEN}, cwd=tmp_path) as base:
        check_session_output(run_session(base))
        assert httpx.get(base + "/readyz").json()["database"] == "ok"
        schema = httpx.get(base + "/openapi.json").json()
        assert "/v1/games/slots/spins" in schema["paths"]
    assert (tmp_path / "var" / "casino.db").exists()


@pytest.mark.postgres
@pytest.mark.redis
async def test_documented_postgres_redis_command(postgres_url: str, redis_url: str) -> None:
    args = serve_commands()[1]
    assert "--redis-url" in args and "--database-url" in args
    schema = f"pitboss_test_{secrets.token_hex(6)}"
    prefix = f"pitboss-test-{secrets.token_hex(6)}:"
    env = {"PITBOSS_CASINO_DB_SCHEMA": schema, "PITBOSS_CASINO_LEADERBOARD_PREFIX": prefix}
    try:
        with casino_server(args, env=env) as base:
            check_session_output(run_session(base))
            tid = httpx.get(base + "/v1/tournaments").json()[0]["id"]
            assert httpx.get(f"{base}/v1/tournaments/{tid}/leaderboard").json() == []
        conn = await asyncpg.connect(postgres_url)
        try:
            n = await conn.fetchval(f'SELECT COUNT(*) FROM "{schema}".ledger_entries')
            assert n >= 2  # the deposit and the spin really went to PostgreSQL
        finally:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_documented_settings_exist_with_their_documented_defaults() -> None:
    rows = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \| ([^|]+) \|", DOC.read_text(), flags=re.M)
    assert len(rows) >= 10
    defaults = CasinoSettings()
    for first, second, documented in rows:
        names = [n for n in (first, second) if n]
        values = [v.strip() for v in documented.split(",")]
        for name, value in zip(names, values if len(values) == len(names) else [documented.strip()], strict=False):
            assert name in CasinoSettings.model_fields, name
            actual = getattr(defaults, name)
            if value == "unset":
                assert actual is None or actual == [], name
            elif name == "database_url":
                assert actual == "sqlite+aiosqlite:///var/casino.db" and value == "`sqlite:///var/casino.db`"
            else:
                assert str(actual) in (value, value + ".0"), (name, actual, value)
