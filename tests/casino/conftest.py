"""Fixtures for the casino tests: the app on real PostgreSQL or SQLite, an HTTP client, players.

PostgreSQL runs are isolated in a fresh schema (``pitboss_test_<random>``,
reached through asyncpg's ``search_path``) that is dropped afterwards; SQLite
runs use a file under ``tmp_path``. The app's lifespan (migrations included)
runs for real; requests go through httpx's ASGI transport.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from casino.app import create_app
from casino.config import CasinoSettings
from tests.pg_cluster import pg_cluster, pg_cluster_module

__all__ = ["pg_cluster", "pg_cluster_module"]

ADMIN = "test-admin-token-of-at-least-32-characters"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Casino:
    """A running app and a client, with helpers that keep tests short."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: CasinoSettings
    _keys: int = field(default=0)

    @property
    def state(self) -> Any:
        return self.app.state.casino

    async def player(self, username: str | None = None, deposit: int = 0) -> dict[str, str]:
        """Register and log in a player; return their auth headers (optionally after a deposit)."""
        username = username or f"p{secrets.token_hex(4)}"
        r = await self.client.post("/v1/players", json={"username": username, "password": "correct horse"})
        assert r.status_code == 201, r.text
        r = await self.client.post("/v1/sessions", json={"username": username, "password": "correct horse"})
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        if deposit:
            r = await self.client.post("/v1/wallet/deposits", json={"amount": deposit},
                                       headers={**headers, "Idempotency-Key": self.key()})
            assert r.status_code == 201, r.text
        return headers

    def key(self) -> str:
        self._keys += 1
        return f"k-{self._keys}-{secrets.token_hex(4)}"

    async def balance(self, headers: dict[str, str]) -> int:
        r = await self.client.get("/v1/wallet", headers=headers)
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])


async def _drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def make_settings(tmp_path: Path, postgres_url: str) -> Any:
    """Build settings for a backend; PostgreSQL schemas are registered for cleanup."""
    schemas: list[str] = []

    def build(backend: str, **overrides: Any) -> CasinoSettings:
        base: dict[str, Any] = {"admin_token": ADMIN, "scrypt_n": 2, "tournament_refresh_seconds": 0,
                                "auth_rate_limit_username": "10000/minute", "auth_rate_limit_address": "10000/minute"}
        if backend == "postgres":
            schema = f"pitboss_test_{secrets.token_hex(6)}"
            schemas.append(schema)
            base.update(database_url=postgres_url, db_schema=schema)
        else:
            base.update(database_url=f"sqlite:///{tmp_path / f'casino-{secrets.token_hex(3)}.db'}")
        base.update(overrides)
        return CasinoSettings(**base)

    build.schemas = schemas  # type: ignore[attr-defined]
    return build


@pytest.fixture
async def open_casino(make_settings: Any, postgres_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Start apps on demand (``await open_casino("sqlite", max_in_flight=2)``); all are stopped after the test."""
    stack: list[Any] = []

    async def start(backend: str, **overrides: Any) -> Casino:
        settings = make_settings(backend, **overrides)
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://casino.test")
        stack.append((lifespan, client))
        return Casino(app, client, settings)

    try:
        yield start
    finally:
        for lifespan, client in reversed(stack):
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
        for schema in make_settings.schemas:
            await _drop_schema(postgres_url, schema)


@pytest.fixture(params=BACKENDS)
async def casino(request: pytest.FixtureRequest, open_casino: Any) -> Casino:
    """The casino on each backend (SQLite file, real PostgreSQL)."""
    return await open_casino(request.param)


@pytest.fixture
async def sqlite_casino(open_casino: Any) -> Casino:
    return await open_casino("sqlite")
