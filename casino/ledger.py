"""The wallet: a double-entry ledger with idempotent, atomic movements.

Called by ``casino.api.wallet`` and ``casino.api.games``. Every movement is a
set of ledger entries under one ``txn_id`` that sum to zero, each player entry
paired with an entry on a house account (``house:cash`` for deposits and
withdrawals, ``house:slots`` for bets and wins). A player's ``accounts.balance``
is kept in the same transaction and a CHECK keeps it non-negative.

PostgreSQL: one statement, one round trip. A data-modifying CTE updates the
balance (the row lock serializes a player's concurrent movements, and
``balance >= required`` is re-checked after the wait), writes the ledger
entries and stores the idempotent response; a repeated key makes the whole
statement fail on the primary key, after which the stored answer is read.
SQLite: the same steps, synchronously, in one ``BEGIN IMMEDIATE`` transaction
on the process's single writer thread (``casino.sqlite_writer``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
from sqlalchemy import text

from casino.db import POOL_TIMEOUT, Database

Outcome = Literal["ok", "replayed", "insufficient_funds", "conflict"]
HOUSE_CASH = "house:cash"
HOUSE_SLOTS = "house:slots"
PLAYER = None  # a leg on the player's own account

# Sent through asyncpg directly on the database's movement pool (a prepared statement per connection,
# one round trip, no SQLAlchemy pool or statement overhead on the hottest path); outside a transaction
# it is atomic by itself.
_PG_MOVE = """
WITH w AS (
    UPDATE accounts SET balance = balance + $1
    WHERE player_id = $2 AND balance >= $3
    RETURNING id, balance
), l AS (
    INSERT INTO ledger_entries (txn_id, account_id, type, amount, created_ms)
    SELECT $4, COALESCE(x.acct, w.id), x.typ, x.amt, $5
    FROM w CROSS JOIN unnest($6::bigint[], $7::text[], $8::bigint[]) AS x(acct, typ, amt)
), i AS (
    INSERT INTO idempotency_keys (player_id, key, request_hash, status_code, body, balance, created_ms)
    SELECT $2, $9, $10, $11, $12, w.balance, $5 FROM w
)
SELECT balance FROM w
"""
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # built once; same bytes as json.dumps(separators=...)
_STORED = text(
    "SELECT request_hash, status_code, body, balance FROM idempotency_keys WHERE player_id = :pid AND key = :key"
)
_BALANCE = text("SELECT id, balance FROM accounts WHERE player_id = :pid")


@dataclass(frozen=True)
class Leg:
    """One side of a movement on the player's account; the house side is its negation."""

    type: str
    amount: int  # signed, as seen by the player's account
    house: str


@dataclass
class MoveResult:
    outcome: Outcome
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    balance: int | None = None


class Ledger:
    """Balances, movements and the audit of the money invariant."""

    def __init__(self, db: Database, currency: str) -> None:
        self.db = db
        self.currency = currency
        self.house: dict[str, int] = {}

    async def load_house_accounts(self) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(text("SELECT name, id FROM accounts WHERE player_id IS NULL"))).all()
        self.house = {str(name): int(acct) for name, acct in rows}

    async def open_account(self, conn: Any, player_id: int, username: str) -> None:
        """Create the player's wallet inside the registration transaction."""
        await conn.execute(
            text("INSERT INTO accounts (name, player_id, currency, balance) VALUES (:n, :p, :c, 0)"),
            {"n": f"player:{username}", "p": player_id, "c": self.currency},
        )

    async def balance(self, player_id: int) -> int:
        """The player's balance; a read replica may answer once it has the player's last movement."""

        async def query(conn: Any) -> Any:
            return (await conn.execute(_BALANCE, {"pid": player_id})).first()

        row = await self.db.read_only(query, fence=f"player:{player_id}", confirm_missing=True)
        if row is None:
            raise LookupError(f"player {player_id} has no wallet")
        return int(row[1])

    async def move(
        self,
        player_id: int,
        key: str,
        request_hash: str,
        legs: list[Leg],
        required: int,
        body: dict[str, Any],
        status_code: int = 201,
    ) -> MoveResult:
        """Apply ``legs`` atomically and idempotently; ``required`` is what the balance must cover first."""
        txn = body.get("transaction_id") or body.get("spin_id") or uuid.uuid4().hex
        now = int(time.time() * 1000)
        delta = sum(leg.amount for leg in legs)
        entries: list[tuple[int | None, str, int]] = []
        for leg in legs:
            if leg.amount == 0:
                continue
            entries.append((PLAYER, leg.type, leg.amount))
            entries.append((self.house[leg.house], leg.type, -leg.amount))
        body_text = _COMPACT.encode(body)
        if self.db.is_postgres:
            return await self._move_pg(player_id, key, request_hash, txn, now, delta, required, entries, body,
                                       body_text, status_code)
        return await self._move_sqlite(player_id, key, request_hash, txn, now, delta, required, entries, body,
                                       body_text, status_code)

    async def _move_pg(self, pid: int, key: str, rhash: str, txn: str, now: int, delta: int, required: int,
                       entries: list[tuple[int | None, str, int]], body: dict[str, Any], body_text: str,
                       status_code: int) -> MoveResult:
        args = (delta, pid, required, txn, now, [e[0] for e in entries], [e[1] for e in entries],
                [e[2] for e in entries], key, rhash, status_code, body_text)
        pool = await self.db.movement_pool()
        try:
            # Wait at most POOL_TIMEOUT for a connection, as SQLAlchemy's pool does; asyncio.timeout is a
            # timer handle, where acquire(timeout=...) would run every checkout as a task of its own.
            async with asyncio.timeout(POOL_TIMEOUT):
                pg = await pool.acquire()
            try:
                row = await pg.fetchrow(_PG_MOVE, *args)
            finally:
                await pool.release(pg)
        except asyncpg.UniqueViolationError:
            row = None  # the key exists (possibly committed by a concurrent twin): answer from the store
        if row is not None:
            if self.db.replicas is not None:
                await self.db.wrote(f"player:{pid}")
            return MoveResult("ok", status_code, {**body, "balance": int(row[0])}, int(row[0]))
        async with self.db.read() as conn:
            stored = (await conn.execute(_STORED, {"pid": pid, "key": key})).first()
            if stored is not None:
                return _replay(stored, rhash)
            acct = (await conn.execute(_BALANCE, {"pid": pid})).first()
        if acct is None:
            raise LookupError(f"player {pid} has no wallet")
        return MoveResult("insufficient_funds", 409, {}, int(acct[1]))

    async def _move_sqlite(self, pid: int, key: str, rhash: str, txn: str, now: int, delta: int, required: int,
                           entries: list[tuple[int | None, str, int]], body: dict[str, Any], body_text: str,
                           status_code: int) -> MoveResult:
        assert self.db.sqlite_writer is not None
        outcome, value = await self.db.sqlite_writer.run(
            _move_sqlite_sync, pid, key, rhash, txn, now, delta, required, entries, body_text, status_code)
        if outcome == "stored":
            return _replay(value, rhash)
        if outcome == "insufficient_funds":
            return MoveResult("insufficient_funds", 409, {}, int(value))
        return MoveResult("ok", status_code, {**body, "balance": int(value)}, int(value))

    async def purge_idempotency_keys(self, older_than_ms: int) -> int:
        """Forget idempotency keys created before ``older_than_ms``; a later retry with one is a new request."""
        async with self.db.write() as conn:
            result = await conn.execute(text("DELETE FROM idempotency_keys WHERE created_ms < :t"),
                                        {"t": older_than_ms})
        return int(getattr(result, "rowcount", 0) or 0)

    async def history(self, player_id: int, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        """The player's own ledger entries, newest first (from a read replica that has their last movement)."""
        sql = ("SELECT e.id, e.txn_id, e.type, e.amount, e.created_ms FROM ledger_entries e "
               "JOIN accounts a ON a.id = e.account_id WHERE a.player_id = :pid")
        params: dict[str, Any] = {"pid": player_id, "limit": limit}
        if before is not None:
            sql += " AND e.id < :before"
            params["before"] = before
        sql += " ORDER BY e.id DESC LIMIT :limit"

        async def query(conn: Any) -> Any:
            return (await conn.execute(text(sql), params)).all()

        rows = await self.db.read_only(query, fence=f"player:{player_id}")
        return [{"id": int(r[0]), "transaction_id": r[1], "type": r[2], "amount": int(r[3]), "created_ms": int(r[4])}
                for r in rows]

    async def audit(self) -> dict[str, int]:
        """The money invariant, measured: every figure but the balances' sum should be zero."""
        async with self.db.read() as conn:
            total = (await conn.execute(text("SELECT COALESCE(SUM(amount), 0) FROM ledger_entries"))).scalar_one()
            balances = (await conn.execute(
                text("SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE player_id IS NOT NULL"))).scalar_one()
            player_entries = (await conn.execute(text(
                "SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e JOIN accounts a ON a.id = e.account_id "
                "WHERE a.player_id IS NOT NULL"))).scalar_one()
            negative = (await conn.execute(text("SELECT COUNT(*) FROM accounts WHERE balance < 0"))).scalar_one()
            unbalanced = (await conn.execute(text(
                "SELECT COUNT(*) FROM (SELECT txn_id, type FROM ledger_entries GROUP BY txn_id, type "
                "HAVING SUM(amount) <> 0) t"))).scalar_one()
            mismatched = (await conn.execute(text(
                "SELECT COUNT(*) FROM accounts a WHERE a.player_id IS NOT NULL AND a.balance <> "
                "(SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e WHERE e.account_id = a.id)"))).scalar_one()
        return {
            "sum_of_entries": int(total),
            "sum_of_player_balances": int(balances),
            "sum_of_player_entries": int(player_entries),
            "negative_balances": int(negative),
            "unbalanced_transactions": int(unbalanced),
            "accounts_not_matching_entries": int(mismatched),
        }


def _move_sqlite_sync(conn: sqlite3.Connection, pid: int, key: str, rhash: str, txn: str, now: int, delta: int,
                      required: int, entries: list[tuple[int | None, str, int]], body_text: str,
                      status_code: int) -> tuple[str, Any]:
    """The whole movement inside the writer thread's IMMEDIATE transaction (SQLite)."""
    row = conn.execute(
        "SELECT a.id, a.balance, k.request_hash, k.status_code, k.body, k.balance FROM accounts a "
        "LEFT JOIN idempotency_keys k ON k.player_id = a.player_id AND k.key = ? WHERE a.player_id = ?",
        (key, pid)).fetchone()
    if row is None:
        raise LookupError(f"player {pid} has no wallet")
    if row[2] is not None:
        return "stored", row[2:6]
    account_id, balance = int(row[0]), int(row[1])
    if balance < required or balance + delta < 0:
        return "insufficient_funds", balance
    new_balance = balance + delta
    conn.execute("UPDATE accounts SET balance = ? WHERE id = ?", (new_balance, account_id))
    conn.executemany(
        "INSERT INTO ledger_entries (txn_id, account_id, type, amount, created_ms) VALUES (?, ?, ?, ?, ?)",
        [(txn, account_id if acct is None else acct, typ, amount, now) for acct, typ, amount in entries])
    conn.execute(
        "INSERT INTO idempotency_keys (player_id, key, request_hash, status_code, body, balance, created_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", (pid, key, rhash, status_code, body_text, new_balance, now))
    return "ok", new_balance


def _replay(stored: Any, request_hash: str) -> MoveResult:
    if stored[0] != request_hash:
        return MoveResult("conflict", 422, {})
    body = json.loads(stored[2])
    if stored[3] is not None:
        body["balance"] = int(stored[3])
    return MoveResult("replayed", int(stored[1]), body, stored[3])
