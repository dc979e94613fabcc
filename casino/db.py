"""Database access for the casino: the async engine, dialect quirks, pool stats.

Created by ``casino.app`` at start-up; used by ``casino.ledger``,
``casino.events`` and ``casino.migrations``. PostgreSQL runs on asyncpg;
SQLite (the embedded default) on aiosqlite with WAL, ``BEGIN IMMEDIATE`` and a
per-process write lock so that writers serialize instead of failing as busy.

Read-only queries that a replica may answer (balances, history, the calendar,
tournaments) go through ``read_only``: with ``read_database_url`` set,
``casino.replicas`` picks a fresh enough standby, else the primary answers;
a replica that fails mid-read is retried on the primary at once. Writes call
``wrote`` afterwards, so that the writer's next reads do not go back in time.

On PostgreSQL the wallet's movements (every spin, deposit and withdrawal) run on
a plain asyncpg pool (``movement_pool``, opened at start-up): checking a connection out of
SQLAlchemy's async pool costs more CPU (greenlet hand-offs, Connection and
fairy objects, reset-on-return) than the movement statement itself. The
``db_pool_size`` budget is split between the two pools (movements get the
larger half; each pool has at least one connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from casino.config import CasinoSettings
from casino.replicas import Observe, ReplicaRouter
from casino.sqlite_writer import SqliteWriter

POOL_TIMEOUT = 10.0  # seconds to wait for a free connection before the request fails
T = TypeVar("T")
ReadCounter = Callable[[str, str | None], None]  # (target, fallback reason or None)


class Database:
    """One engine plus what callers need to know about its dialect."""

    def __init__(self, settings: CasinoSettings, on_read: ReadCounter | None = None,
                 on_replica: Observe | None = None) -> None:
        self.settings = settings
        self.is_postgres = settings.is_postgres
        self.on_read = on_read
        self.replicas: ReplicaRouter | None = None
        self._replica_task: asyncio.Task[None] | None = None
        self.write_lock = asyncio.Lock()
        self.sqlite_writer: SqliteWriter | None = None
        self._movement_pool: asyncpg.Pool | None = None
        self._movement_pool_lock = asyncio.Lock()
        self.movement_pool_size, self.engine_pool_size = split_pool(settings.db_pool_size, self.is_postgres)
        url = make_url(settings.database_url)
        kwargs: dict[str, Any] = {"pool_pre_ping": False}
        if self.is_postgres:
            server_settings = {"application_name": "pitboss-casino"}
            if settings.db_schema:
                server_settings["search_path"] = settings.db_schema
            self._server_settings = server_settings
            kwargs.update(
                pool_size=self.engine_pool_size,
                max_overflow=0,
                pool_timeout=POOL_TIMEOUT,
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
        if settings.read_database_url:
            if not self.is_postgres:
                raise ValueError("read_database_url: read replicas need a PostgreSQL database_url (the primary)")
            self.replicas = ReplicaRouter.build(settings, self.engine, self._server_settings, on_replica)

    async def start_replica_checks(self) -> None:
        """Measure the replicas once now, then every ``replica_check_seconds`` in the background."""
        if self.replicas is None or self._replica_task is not None:
            return
        await self.replicas.check()
        self._replica_task = asyncio.create_task(self.replicas.run())

    async def read_only(self, query: Callable[[AsyncConnection], Awaitable[T]], fence: str | None = None,
                        confirm_missing: bool = False) -> T:
        """Run a read-only ``query(conn)`` on a replica that may answer it, else on the primary.

        ``fence`` names whose data is read (``player:<id>``, ``calendar``): a replica serves it only once
        it has replayed that data's last write (``wrote``). With ``confirm_missing``, an empty answer from a
        replica (no row) is asked again of the primary: a row written by another process may not be there yet.
        """
        reason: str | None = None
        if self.replicas is not None:
            route = await self.replicas.route(fence)
            if route.replica is not None:
                try:
                    async with route.replica.engine.connect() as conn:
                        result = await query(conn)
                except (OSError, TimeoutError, SQLAlchemyError, asyncpg.PostgresError) as exc:
                    self.replicas.mark_down(route.replica, exc)
                    reason = "unreachable"
                else:
                    if not (confirm_missing and not result):
                        if self.on_read is not None:
                            self.on_read("replica", None)
                        return result
                    reason = "missing"
            else:
                reason = route.reason
        async with self.read() as conn:
            result = await query(conn)
        if self.on_read is not None:
            self.on_read("primary", reason)
        return result

    async def wrote(self, fence: str) -> None:
        """After a commit: reads fenced by ``fence`` stay on the primary until a replica has this write."""
        if self.replicas is not None:
            await self.replicas.wrote(fence)

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

    async def movement_pool(self) -> asyncpg.Pool:
        """The asyncpg pool for wallet movements (PostgreSQL only); ``casino.app`` opens it at start-up."""
        pool = self._movement_pool
        if pool is not None:
            return pool
        async with self._movement_pool_lock:
            if self._movement_pool is None:
                _args, connect_kwargs = self.engine.dialect.create_connect_args(self.engine.url)
                connect_kwargs.pop("async_fallback", None)
                connect_kwargs.pop("prepared_statement_cache_size", None)
                self._movement_pool = await asyncpg.create_pool(
                    **connect_kwargs, min_size=1, max_size=self.movement_pool_size,
                    server_settings=self._server_settings, timeout=POOL_TIMEOUT, reset=_keep_session)
            return self._movement_pool

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
            in_use, size = int(pool.checkedout()), int(pool.size())
        except AttributeError:
            in_use, size = 0, self.engine_pool_size
        if self.is_postgres:
            size += self.movement_pool_size
            moves = self._movement_pool
            if moves is not None:
                in_use += moves.get_size() - moves.get_idle_size()
        return in_use, size

    async def dispose(self) -> None:
        if self._replica_task is not None:
            self._replica_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replica_task
            self._replica_task = None
        if self.replicas is not None:
            await self.replicas.close()
        if self._movement_pool is not None:
            pool, self._movement_pool = self._movement_pool, None
            try:  # close waits for checked-out connections; do not let shutdown hang on one
                await asyncio.wait_for(pool.close(), timeout=POOL_TIMEOUT)
            except TimeoutError:
                pool.terminate()
        if self.sqlite_writer is not None:
            await self.sqlite_writer.close()
        await self.engine.dispose()


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release hook of the movement pool: skip asyncpg's reset query (one more round trip per movement).

    The movement statement never changes session state (no SET, LISTEN, advisory lock or
    cursor); asyncpg still rolls back any open transaction before calling this.
    """


def split_pool(size: int, is_postgres: bool) -> tuple[int, int]:
    """(movement pool, SQLAlchemy pool) sizes from ``db_pool_size``; SQLite has no movement pool."""
    if not is_postgres:
        return 0, size
    moves = max(1, size - size // 2)
    return moves, max(1, size - moves)


def _switch_to_wal(cur: Any, attempts: int = 300) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another connection holds the fresh file.

    SQLite does not call the busy handler for a journal-mode switch that would deadlock with a
    writer that is itself waiting (several replicas opening a new file at once), so the
    busy timeout alone does not cover it; this waits up to ``attempts`` x 0.1 s. The connect
    hook runs in SQLAlchemy's greenlet on the event loop, so the pause is awaited, never slept:
    the connection that holds the file needs the loop to commit.
    """
    for attempt in range(attempts):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            await_only(asyncio.sleep(0.1))


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for write transactions only."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
        cur = dbapi_conn.cursor()
        # The busy timeout first: switching a fresh file to WAL needs a lock that replicas
        # (or test databases) opening it at the same moment contend for.
        cur.execute("PRAGMA busy_timeout=30000")
        _switch_to_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the database lock up front; readers start a deferred (WAL snapshot) transaction
        # that never blocks a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("pitboss_write") else "BEGIN")
