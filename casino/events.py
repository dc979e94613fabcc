"""The calendar of known future events, and tournaments (events of kind ``tournament``).

Called by ``casino.api.events`` (admin writes, public reads the operator
uses), ``casino.api.tournaments`` and ``casino.api.games`` (which tournaments
are running now, cached for ``tournament_refresh_seconds``). Reads may be
answered by a read replica that has the calendar's last write
(``Database.read_only``, fence ``calendar``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from casino.db import Database

FENCE = "calendar"  # the read-your-writes fence of every calendar read (casino.replicas)
KINDS = ("promotion", "tournament", "free_spins", "jackpot", "sports_fixture", "maintenance")


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    kind: str
    start_ms: int
    end_ms: int
    expected_lift: float | None
    services: list[str]

    def status(self, now_ms: int) -> str:
        if now_ms < self.start_ms:
            return "upcoming"
        return "running" if now_ms < self.end_ms else "finished"


_COLUMNS = "id, name, kind, start_ms, end_ms, expected_lift, services"


def _event(row: Any) -> Event:
    return Event(int(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]),
                 None if row[5] is None else float(row[5]), list(json.loads(row[6])))


class Calendar:
    def __init__(self, db: Database, refresh_seconds: float) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self._running: list[Event] = []
        self._running_until = 0.0

    async def add(self, name: str, kind: str, start_ms: int, end_ms: int, expected_lift: float | None,
                  services: list[str]) -> Event:
        async with self.db.write() as conn:
            event_id = int((await conn.execute(
                text("INSERT INTO events (name, kind, start_ms, end_ms, expected_lift, services, created_ms) "
                     "VALUES (:n, :k, :s, :e, :l, :sv, :c) RETURNING id"),
                {"n": name, "k": kind, "s": start_ms, "e": end_ms, "l": expected_lift,
                 "sv": json.dumps(services), "c": int(time.time() * 1000)})).scalar_one())
        await self.db.wrote(FENCE)
        self._running_until = 0.0
        return Event(event_id, name, kind, start_ms, end_ms, expected_lift, services)

    async def delete(self, event_id: int) -> bool:
        async with self.db.write() as conn:
            await conn.execute(text("DELETE FROM tournament_entries WHERE event_id = :i"), {"i": event_id})
            result = await conn.execute(text("DELETE FROM events WHERE id = :i"), {"i": event_id})
        await self.db.wrote(FENCE)
        self._running_until = 0.0
        return bool(getattr(result, "rowcount", 0))

    async def between(self, from_ms: int, to_ms: int, kind: str | None = None) -> list[Event]:
        """Events overlapping [from, to), by start."""
        sql = f"SELECT {_COLUMNS} FROM events WHERE end_ms > :f AND start_ms < :t"
        params: dict[str, Any] = {"f": from_ms, "t": to_ms}
        if kind is not None:
            sql += " AND kind = :k"
            params["k"] = kind
        return [_event(r) for r in await self._rows(text(sql + " ORDER BY start_ms, id"), params)]

    async def get(self, event_id: int) -> Event | None:
        rows = await self._rows(text(f"SELECT {_COLUMNS} FROM events WHERE id = :i"), {"i": event_id},
                                confirm_missing=True)
        return _event(rows[0]) if rows else None

    async def tournaments(self, limit: int) -> list[Event]:
        rows = await self._rows(text(f"SELECT {_COLUMNS} FROM events WHERE kind = 'tournament' "
                                     "ORDER BY start_ms DESC, id DESC LIMIT :l"), {"l": limit})
        return [_event(r) for r in rows]

    async def _rows(self, sql: Any, params: dict[str, Any], confirm_missing: bool = False) -> list[Any]:
        async def query(conn: Any) -> list[Any]:
            return list((await conn.execute(sql, params)).all())

        return await self.db.read_only(query, fence=FENCE, confirm_missing=confirm_missing)

    async def enter(self, event_id: int, player_id: int) -> bool:
        """Record an entry; False when the player had already entered."""
        try:
            async with self.db.write() as conn:
                row = (await conn.execute(
                    text("SELECT 1 FROM tournament_entries WHERE event_id = :e AND player_id = :p"),
                    {"e": event_id, "p": player_id})).first()
                if row:
                    return False
                await conn.execute(
                    text("INSERT INTO tournament_entries (event_id, player_id, created_ms) VALUES (:e, :p, :c)"),
                    {"e": event_id, "p": player_id, "c": int(time.time() * 1000)})
        except IntegrityError:
            return False
        return True

    async def running_tournaments(self) -> list[Event]:
        """Tournaments whose window contains now (cached briefly; a spin asks every time)."""
        now = time.monotonic()
        if now >= self._running_until:
            now_ms = int(time.time() * 1000)
            self._running = await self.between(now_ms, now_ms + 1, kind="tournament")
            self._running_until = now + self.refresh_seconds
        now_ms = int(time.time() * 1000)
        return [e for e in self._running if e.start_ms <= now_ms < e.end_ms]
