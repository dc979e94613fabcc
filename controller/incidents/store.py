"""The local incident log (SQLite): incidents, their transitions and acks.

The embedded default's incident store, and each operator instance's record of
what it raised: the engine upserts every transition here. Read by ``pitboss
incidents list/ack``. It is a log, not a delivery queue: delivery to
Alertmanager re-sends the live state each resend interval (so a lost pod
loses nothing), see ``controller.incidents.delivery``. One file, WAL mode,
stdlib ``sqlite3``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from controller.errors import InputError
from controller.incidents.model import Incident

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    alertname TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ends_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_state ON incidents(state, starts_at);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    id TEXT PRIMARY KEY,
    until TEXT NOT NULL,
    comment TEXT NOT NULL,
    silence_id TEXT
);
"""


class IncidentLog:
    """SQLite-backed incident log. Safe to share between threads (one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create directory {parent}: {exc.strerror}", field="incident log") from exc
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: no fsync per commit (the loop writes in its cycle); a process crash loses
            # nothing, a power loss at most the last commits (the next cycles re-raise what is still wrong).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a Pitboss incident log: {exc}", source=self.path) from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # --- incidents -------------------------------------------------------------------------

    def record(self, incident: Incident, *, transition: bool) -> None:
        """Upsert ``incident``; when ``transition`` also append to its history."""
        i = incident
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO incidents(id, alertname, severity, state, starts_at, updated_at, ends_at, body)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET alertname=excluded.alertname,"
                " severity=excluded.severity, state=excluded.state, starts_at=excluded.starts_at,"
                " updated_at=excluded.updated_at, ends_at=excluded.ends_at, body=excluded.body",
                (i.id, i.alertname, str(i.severity), i.state, i.starts_at.isoformat(), i.updated_at.isoformat(),
                 i.ends_at.isoformat() if i.ends_at else None, json.dumps(i.to_dict())),
            )
            if transition:
                self._db.execute(
                    "INSERT INTO transitions(id, at, state, summary) VALUES (?,?,?,?)",
                    (i.id, i.updated_at.isoformat(), i.state, i.summary),
                )
            self._db.execute("COMMIT")

    def get(self, incident_id: str) -> Incident | None:
        """The incident with this id, or None."""
        with self._lock:
            row = self._db.execute("SELECT body FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return Incident.from_dict(json.loads(row[0])) if row else None

    def resolve_prefix(self, prefix: str) -> Incident:
        """The one incident whose id starts with ``prefix`` (InputError when none or several)."""
        if not prefix or any(ch not in "0123456789abcdef" for ch in prefix.lower()):
            raise InputError(f"expected a hex incident id, got {prefix!r}", field="ID")
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM incidents WHERE id LIKE ? LIMIT 2", (prefix.lower() + "%",)
            ).fetchall()
        if not rows:
            raise InputError(f"no incident with id {prefix!r} in {self.path}", field="ID")
        if len(rows) > 1:
            raise InputError(f"id {prefix!r} is ambiguous; give more digits", field="ID")
        return Incident.from_dict(json.loads(rows[0][0]))

    def incidents(self, state: str | None = None, limit: int = 1000) -> list[Incident]:
        """Incidents, newest first; only ``state`` when given."""
        query = "SELECT body FROM incidents"
        args: tuple[object, ...] = ()
        if state:
            query += " WHERE state = ?"
            args = (state,)
        query += " ORDER BY starts_at DESC, id LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        return [Incident.from_dict(json.loads(r[0])) for r in rows]

    def active(self) -> list[Incident]:
        """Firing incidents (the engine reloads them on start)."""
        return self.incidents("firing", limit=100_000)

    def transitions(self, incident_id: str) -> list[tuple[str, str, str]]:
        """(at, state, summary) rows of one incident, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT at, state, summary FROM transitions WHERE id = ? ORDER BY seq", (incident_id,)
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    # --- acks ------------------------------------------------------------------------------

    def ack(self, incident_id: str, until: datetime, comment: str, silence_id: str | None = None) -> None:
        """Acknowledge an incident until ``until`` (a local ack; ``silence_id`` if Alertmanager has one)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO acks(id, until, comment, silence_id) VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE"
                " SET until=excluded.until, comment=excluded.comment, silence_id=excluded.silence_id",
                (incident_id, until.isoformat(), comment, silence_id),
            )

    def acked_until(self, incident_id: str) -> datetime | None:
        """When the ack of this incident ends, or None."""
        with self._lock:
            row = self._db.execute("SELECT until FROM acks WHERE id = ?", (incident_id,)).fetchone()
        return datetime.fromisoformat(row[0]) if row else None
