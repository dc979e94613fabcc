"""Players and their sessions in the database.

Called by ``casino.api.players`` (register, log in) and ``casino.api.deps``
(resolving a bearer token). Password hashing happens in ``casino.auth``, off
the event loop.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from casino.auth import Principal
from casino.db import Database
from casino.ledger import Ledger


class UsernameTaken(Exception):
    """The username is already registered."""


class Players:
    def __init__(self, db: Database, ledger: Ledger) -> None:
        self.db = db
        self.ledger = ledger

    async def register(self, username: str, password_hash: str) -> int:
        """Create the player and their empty wallet in one transaction."""
        now = int(time.time() * 1000)
        try:
            async with self.db.write() as conn:
                exists = (await conn.execute(text("SELECT 1 FROM players WHERE username = :u"),
                                             {"u": username})).first()
                if exists:
                    raise UsernameTaken(username)
                player_id = int((await conn.execute(
                    text("INSERT INTO players (username, password_hash, created_ms) VALUES (:u, :h, :t) RETURNING id"),
                    {"u": username, "h": password_hash, "t": now})).scalar_one())
                await self.ledger.open_account(conn, player_id, username)
        except IntegrityError as exc:  # a concurrent registration of the same name won the race
            raise UsernameTaken(username) from exc
        await self.db.wrote(f"player:{player_id}")  # the new wallet is read from the primary until replicated
        return player_id

    async def credentials(self, username: str) -> tuple[int, str] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(text("SELECT id, password_hash FROM players WHERE username = :u"),
                                      {"u": username})).first()
        return (int(row[0]), str(row[1])) if row else None

    async def create_session(self, player_id: int, token_hash: str, ttl_seconds: int) -> int:
        now = int(time.time() * 1000)
        expires = now + ttl_seconds * 1000
        async with self.db.write() as conn:
            await conn.execute(
                text("INSERT INTO sessions (token_hash, player_id, created_ms, expires_ms) VALUES (:h, :p, :c, :e)"),
                {"h": token_hash, "p": player_id, "c": now, "e": expires})
        return expires

    async def session(self, token_hash: str) -> Principal | None:
        """The live session behind a token digest, or None when unknown or expired."""
        async with self.db.read() as conn:
            row = (await conn.execute(
                text("SELECT s.player_id, p.username, s.expires_ms FROM sessions s "
                     "JOIN players p ON p.id = s.player_id WHERE s.token_hash = :h"), {"h": token_hash})).first()
        if row is None or int(row[2]) <= time.time() * 1000:
            return None
        return Principal(player_id=int(row[0]), username=str(row[1]), token_hash=token_hash, expires_ms=int(row[2]))

    async def username(self, player_id: int) -> str | None:
        async with self.db.read() as conn:
            row = (await conn.execute(text("SELECT username FROM players WHERE id = :p"), {"p": player_id})).first()
        return str(row[0]) if row else None
