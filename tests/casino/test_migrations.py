"""Versioned migrations: applied once, recorded, safe when replicas start together."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from casino.db import Database
from casino.migrations import LATEST_VERSION, MIGRATIONS, migrate
from tests.casino.conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
async def test_migrations_apply_once_and_record_their_version(make_settings: Any, backend: str,
                                                              postgres_url: str) -> None:
    from tests.casino.conftest import _drop_schema

    settings = make_settings(backend)
    dbs = [Database(settings) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(migrate(db) for db in dbs))  # three replicas starting at once
        assert sorted(applied, key=len) == [[], [], [v for v, _, _ in MIGRATIONS]]
        assert await migrate(dbs[0]) == []
        async with dbs[0].read() as conn:
            versions = (await conn.execute(text("SELECT version FROM schema_version ORDER BY version"))).scalars()
            assert list(versions) == list(range(1, LATEST_VERSION + 1))
            houses = (await conn.execute(text("SELECT name FROM accounts ORDER BY name"))).scalars()
            assert list(houses) == ["house:cash", "house:slots"]
    finally:
        for db in dbs:
            await db.dispose()
        if backend == "postgres":
            await _drop_schema(postgres_url, settings.db_schema)
