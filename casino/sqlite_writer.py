"""A single writer thread for SQLite wallet movements (the embedded default's hot path).

Used by ``casino.ledger`` when the database is SQLite. SQLite admits one writer
at a time anyway; doing each whole movement synchronously in one dedicated
thread costs one hand-off from the event loop instead of one per statement,
and the thread's queue is the per-process write serialization. Other writes
(registration, calendar) still go through SQLAlchemy with ``BEGIN IMMEDIATE``;
SQLite's lock and busy timeout arbitrate between the two.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class SqliteWriter:
    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="casino-sqlite-writer")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
        return self._conn

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in one IMMEDIATE transaction on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, fn, args)

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)
