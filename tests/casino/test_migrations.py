"""Versioned migrations: applied once, recorded, safe when replicas start together."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.util import greenlet_spawn

from casino.db import Database, _switch_to_wal
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


class _LockedCursor:
    """A DB-API cursor whose journal-mode switch is refused ``busy`` times, as SQLite refuses it
    (without calling the busy handler) while another new connection holds the fresh file."""

    def __init__(self, busy: int, message: str = "database is locked") -> None:
        self.busy, self.message, self.calls = busy, message, 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.busy:
            raise sqlite3.OperationalError(self.message)


async def test_the_wal_switch_waits_for_a_replica_that_holds_the_fresh_file() -> None:
    cursor = _LockedCursor(busy=3)
    await greenlet_spawn(_switch_to_wal, cursor)
    assert cursor.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await greenlet_spawn(_switch_to_wal, _LockedCursor(busy=5), 2)
    other = _LockedCursor(busy=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        await greenlet_spawn(_switch_to_wal, other)
    assert other.calls == 1  # only a lock is waited for
