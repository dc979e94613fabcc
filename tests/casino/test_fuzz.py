"""Fuzz every operation of /openapi.json with schemathesis against a real uvicorn server (SQLite, PostgreSQL).

Bounded: at most 25 examples per operation. Requests carry a valid player
token (and the admin token on /v1/admin routes) so that generated bodies reach
the handlers instead of stopping at 401. The only property checked is the one
the issue asks for: no 5xx.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.casino.conftest import _drop_schema
from tests.casino.serving import casino_server

ADMIN = "fuzz-admin"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str) -> Iterator[dict[str, Any]]:
    env = {"PITBOSS_CASINO_SCRYPT_N": "2", "PITBOSS_CASINO_MAX_IN_FLIGHT": "1000"}
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
        httpx.post(base + "/v1/players", json={"username": "fuzzer", "password": "fuzzer-password"}).raise_for_status()
        token = httpx.post(base + "/v1/sessions", json={"username": "fuzzer", "password": "fuzzer-password"}).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        httpx.post(base + "/v1/wallet/deposits", json={"amount": 10**6},
                   headers={**headers, "Idempotency-Key": "seed"}).raise_for_status()
        yield {"base": base, "headers": headers}


def test_no_operation_answers_5xx(server: dict[str, Any]) -> None:
    """Each operation gets its own hypothesis run (schemathesis's pytest plugin does not load on pytest 9)."""
    schema = schemathesis.openapi.from_url(server["base"] + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 14
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            headers = dict(case.headers or {})
            if "Authorization" not in headers or case.path.startswith(("/v1/wallet", "/v1/games")):
                headers["Authorization"] = server["headers"]["Authorization"]
            if case.path.startswith("/v1/admin"):
                headers["Authorization"] = f"Bearer {ADMIN}"
            case.call_and_validate(base_url=server["base"], headers=headers, checks=[not_a_server_error])

        run()
    metrics = httpx.get(server["base"] + "/metrics").text
    served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith("casino_http_requests_total{"))
    five_xx = [line for line in metrics.splitlines()
               if line.startswith("casino_http_requests_total{") and 'status="5' in line]
    assert served >= 10 * len(operations), served  # the fuzzer really exercised the server
    assert five_xx == []
