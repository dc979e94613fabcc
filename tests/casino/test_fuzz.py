"""The OpenAPI contract, checked the way a user checks it: ``schemathesis run --checks all`` against a real server.

A real uvicorn server (SQLite, PostgreSQL) is fuzzed by the schemathesis CLI
with every check (status codes, content types, headers and bodies as
documented, negative data rejected, positive data accepted, auth not
ignored, stateful runs along the document's links, use after free). Requests
carry a valid player token, the admin token on /v1/admin, and the fuzzer's
own username where a route only serves its caller, so generated input gets
past 401/403; running tournaments are seeded so that the links from GET
/v1/tournaments reach one. Rules JSON Schema cannot state are applied to
positive cases by tests/casino/schemathesis_hooks.py, read from the
document's ``x-pitboss-rules``. Bounded: 25 examples per operation.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.casino.conftest import _drop_schema
from tests.casino.serving import casino_server

REPO = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
ADMIN = "fuzz-admin-token-" + "x" * 24
PLAYER = "fuzzer"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str) -> Iterator[dict[str, Any]]:
    env = {"PITBOSS_CASINO_SCRYPT_N": "2", "PITBOSS_CASINO_MAX_IN_FLIGHT": "1000",
           "PITBOSS_CASINO_AUTH_RATE_LIMIT_USERNAME": "100000/minute",
           "PITBOSS_CASINO_AUTH_RATE_LIMIT_ADDRESS": "100000/minute"}
    schema = f"pitboss_test_{secrets.token_hex(6)}"
    if request.param == "postgres":
        url = postgres_url
        env["PITBOSS_CASINO_DB_SCHEMA"] = schema
    else:
        url = f"sqlite:///{tmp_path / 'casino.db'}"
    try:
        yield from _serve(url, env)
    finally:
        if request.param == "postgres":
            asyncio.run(_drop_schema(postgres_url, schema))


def _serve(url: str, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    with casino_server(["--database-url", url, "--admin-token", ADMIN], env) as base:
        credentials = {"username": PLAYER, "password": "fuzzer-password"}
        httpx.post(base + "/v1/players", json=credentials).raise_for_status()
        token = httpx.post(base + "/v1/sessions", json=credentials).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(base + "/v1/wallet/deposits", json={"amount": 10**6},
                   headers={**headers, "Idempotency-Key": "seed"}).raise_for_status()
        now = datetime.now(UTC)
        for i in range(8):  # several: the fuzzer deletes events by id (1, 2, ... first)
            httpx.post(base + "/v1/admin/events", headers={"Authorization": f"Bearer {ADMIN}"}, json={
                "name": f"Fuzz Cup {i}", "kind": "tournament", "start": (now - timedelta(minutes=1)).isoformat(),
                "end": (now + timedelta(hours=2)).isoformat()}).raise_for_status()
        yield {"base": base, "token": token}


def _config(path: Path, token: str) -> Path:
    path.write_text(f"""
hooks = "tests.casino.schemathesis_hooks"
headers = {{ Authorization = "Bearer {token}" }}

[generation]
database = "none"

[[operations]]
include-path-regex = "^/v1/admin/"
headers = {{ Authorization = "Bearer {ADMIN}" }}

[[operations]]
include-name = "GET /v1/players/{{username}}"
parameters = {{ username = "{PLAYER}" }}
""")
    return path


def test_schemathesis_all_checks_find_nothing(server: dict[str, Any], tmp_path: Path) -> None:
    config = _config(tmp_path / "schemathesis.toml", server["token"])
    argv = [SCHEMATHESIS, "--no-color", "--config-file", str(config), "run", server["base"] + "/openapi.json",
            "--checks", "all", "--max-examples", "25", "--workers", "1", "--request-timeout", "30"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-12000:]
    assert "Tested: 17" in report and "No issues found" in report, report[-3000:]
    # Authenticated, with links and seeded tournaments: no operation is stuck behind 401/403 or 404.
    assert "Authentication failed" not in report and "Missing test data" not in report, report[-3000:]
    metrics = httpx.get(server["base"] + "/metrics").text
    lines = [line for line in metrics.splitlines() if line.startswith("casino_http_requests_total{")]
    served = sum(float(line.rsplit(" ", 1)[1]) for line in lines)
    assert served >= 25 * 17, served  # the fuzzer really exercised the server
    assert [line for line in lines if 'status="5' in line] == []
