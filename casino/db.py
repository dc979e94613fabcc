"""Database access for the casino: the async engine, dialect quirks, pool stats.

Created by ``casino.app`` at start-up; used by ``casino.ledger``,
``casino.events`` and ``casino.migrations``. PostgreSQL runs on asyncpg;
SQLite (the embedded default) on aiosqlite with WAL, ``BEGIN IMMEDIATE`` and a
per-process write lock so that writers serialize instead of failing as busy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from casino.config import CasinoSettings
from casino.sqlite_writer import SqliteWriter


class Database:
    """One engine plus what callers need to know about its dialect."""

    def __init__(self, settings: CasinoSettings) -> None:
        self.settings = settings
        self.is_postgres = settings.is_postgres
        self.write_lock = asyncio.Lock()
        self.sqlite_writer: SqliteWriter | None = None
        url = make_url(settings.database_url)
        kwargs: dict[str, Any] = {"pool_pre_ping": False}
        if self.is_postgres:
            server_settings = {"application_name": "pitboss-casino"}
            if settings.db_schema:
                server_settings["search_path"] = settings.db_schema
            kwargs.update(
                pool_size=settings.db_pool_size,
                max_overflow=0,
                pool_timeout=10,
                connect_args={"server_settings": server_settings},
            )
        else:
            if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
                raise ValueError("database_url: SQLite needs a file path, e.g. sqlite:///var/casino.db")
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            self.sqlite_writer = SqliteWriter(url.database)
            kwargs.update(pool_size=settings.db_pool_size, max_overflow=0, connect_args={"timeout": 30})
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if not self.is_postgres:
            _sqlite_pragmas(self.engine)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: ``BEGIN IMMEDIATE`` under the process lock on SQLite, plain on PostgreSQL."""
        if self.is_postgres:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self.write_lock, self.engine.connect() as conn:
            await conn.execution_options(pitboss_write=True)
            async with conn.begin():
                yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection (no explicit transaction bookkeeping for callers)."""
        async with self.engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        """Raise when the database is unreachable (``/readyz``)."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def pool_stats(self) -> tuple[int, int]:
        """(connections checked out, configured pool size)."""
        pool: Any = self.engine.pool
        try:
            return int(pool.checkedout()), int(pool.size())
        except AttributeError:
            return 0, self.settings.db_pool_size

    async def dispose(self) -> None:
        if self.sqlite_writer is not None:
            await self.sqlite_writer.close()
        await self.engine.dispose()


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for write transactions only."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the database lock up front; readers start a deferred (WAL snapshot) transaction
        # that never blocks a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("pitboss_write") else "BEGIN")
