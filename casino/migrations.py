"""Versioned schema migrations, applied in order on start (``casino.app`` lifespan).

Each migration is a list of SQL statements; ``{pk}`` is the dialect's
auto-increment primary key. The ``schema_version`` table records what ran. On
PostgreSQL a transaction-scoped advisory lock makes concurrent replicas
starting together apply each migration exactly once; on SQLite ``BEGIN
IMMEDIATE`` does the same. Timestamps are integer epoch milliseconds and money
is integer minor units on both dialects.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from casino.db import Database

ADVISORY_LOCK_ID = 0x5069_7462_6F73  # "Pitbos"

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "players, accounts, double-entry ledger, idempotency",
        [
            """CREATE TABLE players (
                id {pk},
                username TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                created_ms BIGINT NOT NULL)""",
            """CREATE TABLE sessions (
                token_hash TEXT PRIMARY KEY,
                player_id BIGINT NOT NULL REFERENCES players(id),
                created_ms BIGINT NOT NULL,
                expires_ms BIGINT NOT NULL)""",
            # balance is kept for player accounts only; a house account's position is the
            # sum of its ledger entries (no hot row that every spin would have to lock).
            """CREATE TABLE accounts (
                id {pk},
                name TEXT NOT NULL UNIQUE,
                player_id BIGINT UNIQUE REFERENCES players(id),
                currency TEXT NOT NULL,
                balance BIGINT NOT NULL DEFAULT 0,
                CONSTRAINT balance_not_negative CHECK (balance >= 0))""",
            """CREATE TABLE ledger_entries (
                id {pk},
                txn_id TEXT NOT NULL,
                account_id BIGINT NOT NULL REFERENCES accounts(id),
                type TEXT NOT NULL,
                amount BIGINT NOT NULL,
                created_ms BIGINT NOT NULL)""",
            "CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id)",
            "CREATE INDEX ledger_entries_txn ON ledger_entries (txn_id)",
            """CREATE TABLE idempotency_keys (
                player_id BIGINT NOT NULL,
                key TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                status_code INTEGER NOT NULL,
                body TEXT NOT NULL,
                balance BIGINT,
                created_ms BIGINT NOT NULL,
                PRIMARY KEY (player_id, key))""",
            "INSERT INTO accounts (name, currency, balance) VALUES ('house:cash', 'XXX', 0)",
            "INSERT INTO accounts (name, currency, balance) VALUES ('house:slots', 'XXX', 0)",
        ],
    ),
    (
        2,
        "event calendar and tournament entries",
        [
            """CREATE TABLE events (
                id {pk},
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                start_ms BIGINT NOT NULL,
                end_ms BIGINT NOT NULL,
                expected_lift DOUBLE PRECISION,
                services TEXT NOT NULL,
                created_ms BIGINT NOT NULL,
                CONSTRAINT event_window CHECK (end_ms > start_ms))""",
            "CREATE INDEX events_window ON events (start_ms, end_ms)",
            """CREATE TABLE tournament_entries (
                event_id BIGINT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
                player_id BIGINT NOT NULL REFERENCES players(id),
                created_ms BIGINT NOT NULL,
                PRIMARY KEY (event_id, player_id))""",
        ],
    ),
    (
        3,
        "idempotency keys expire: index their age",
        ["CREATE INDEX idempotency_keys_created ON idempotency_keys (created_ms)"],
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


async def current_version(conn: AsyncConnection) -> int:
    row = (await conn.execute(text("SELECT MAX(version) FROM schema_version"))).first()
    return int(row[0]) if row and row[0] is not None else 0


async def migrate(db: Database) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    pk = "BIGSERIAL PRIMARY KEY" if db.is_postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
    applied: list[int] = []
    async with db.write() as conn:
        if db.is_postgres:
            # Serializes replicas starting together, schema creation included (a concurrent
            # CREATE SCHEMA IF NOT EXISTS can otherwise fail on the catalog's unique index).
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            if db.settings.db_schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db.settings.db_schema}"'))
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ms BIGINT NOT NULL)"
            )
        )
        have = await current_version(conn)
        for version, description, statements in MIGRATIONS:
            if version <= have:
                continue
            for statement in statements:
                await conn.execute(text(statement.replace("{pk}", pk)))
            await conn.execute(
                text("INSERT INTO schema_version (version, description, applied_ms) VALUES (:v, :d, :t)"),
                {"v": version, "d": description, "t": int(time.time() * 1000)},
            )
            applied.append(version)
    return applied
