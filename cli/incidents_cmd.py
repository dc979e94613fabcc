"""CLI commands: ``pitboss incidents list`` and ``pitboss incidents ack`` (issue 6).

Registered on the root app by cli.app. Reads the local incident log (SQLite,
``--db`` / ``PITBOSS_INCIDENTS_DB``, the embedded default) or, with
``--alertmanager`` / ``PITBOSS_ALERTMANAGER_URL``, Alertmanager's API v2.
``ack`` records a local ack and, when Alertmanager is given, adds a silence
matching the incident's ``pitboss_id`` label for the given duration.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cli.common import console, guarded
from controller.core.durations import format_duration, parse_duration
from controller.errors import InputError
from controller.incidents.alertmanager import AlertmanagerClient
from controller.incidents.store import IncidentLog

DEFAULT_DB = "var/incidents.db"
MAX_ACK = timedelta(days=30)

incidents_app = typer.Typer(help="List and acknowledge Pitboss incidents.", no_args_is_help=True)

DbOption = typer.Option(DEFAULT_DB, "--db", envvar="PITBOSS_INCIDENTS_DB", help="local incident log (SQLite)")
AmOption = typer.Option(None, "--alertmanager", envvar="PITBOSS_ALERTMANAGER_URL",
                        help="Alertmanager base URL; list from it and silence in it")


class StateFilter(StrEnum):
    """Incident states to filter by."""

    firing = "firing"
    resolved = "resolved"
    handed_off = "handed_off"  # this replica stopped watching it: its policy's shard moved to another replica


def _open_log(db: Path, *, required: bool) -> IncidentLog | None:
    if not db.exists():
        if required:
            raise InputError("no incident log here (set --db or PITBOSS_INCIDENTS_DB)", source=str(db))
        return None
    return IncidentLog(db)


def _am_rows(client: AlertmanagerClient, state: StateFilter | None) -> list[dict[str, Any]]:
    rows = []
    for alert in client.alerts(filters=['pitboss_id=~".+"']):
        labels = alert.get("labels", {})
        status = alert.get("status", {})
        rows.append({
            "id": labels.get("pitboss_id", ""),
            "alertname": labels.get("alertname", ""),
            "severity": labels.get("severity", ""),
            "labels": labels,
            "summary": alert.get("annotations", {}).get("summary", ""),
            "runbook_url": alert.get("annotations", {}).get("runbook_url", ""),
            "state": "firing",  # Alertmanager lists active alerts only
            "am_state": status.get("state", ""),
            "silenced_by": status.get("silencedBy", []),
            "starts_at": alert.get("startsAt", ""),
            "ends_at": alert.get("endsAt", ""),
        })
    if state is not None and state is not StateFilter.firing:  # resolved or handed off: a local log's view only
        return []
    return sorted(rows, key=lambda r: (r["starts_at"], r["id"]), reverse=True)


@incidents_app.command("list")
@guarded
def list_cmd(
    state: StateFilter | None = typer.Option(None, "--state", help="only incidents in this state"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    db: Path = DbOption,
    alertmanager: str | None = AmOption,
) -> None:
    """List incidents, newest first (from Alertmanager when --alertmanager is given)."""
    if alertmanager:
        client = AlertmanagerClient(alertmanager)
        try:
            rows = _am_rows(client, state)
        finally:
            client.close()
    else:
        log = _open_log(db, required=True)
        assert log is not None
        try:
            rows = []
            for incident in log.incidents(state.value if state else None):
                row = incident.to_dict()
                until = log.acked_until(incident.id)
                row["acked_until"] = until.isoformat() if until else None
                rows.append(row)
        finally:
            log.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no incidents" + (f" in state {state.value}" if state else ""))
        return
    table = Table(show_lines=False)
    table.add_column("ID", no_wrap=True, min_width=16)
    table.add_column("STATE", no_wrap=True)
    for col in ("SEVERITY", "ALERT", "POLICY", "SINCE", "SUMMARY"):
        table.add_column(col, overflow="fold")
    for row in rows:
        status = row["state"]
        if row.get("am_state") == "suppressed" or row.get("acked_until"):
            status += " (acked)"
        labels = row.get("labels", {})
        table.add_row(row["id"], status, row["severity"], row["alertname"],
                      f"{labels.get('namespace', '')}/{labels.get('policy', '')}", str(row["starts_at"])[:19],
                      row["summary"])
    console.print(table)


@incidents_app.command("ack")
@guarded
def ack_cmd(
    incident_id: str = typer.Argument(..., metavar="ID", help="incident id (its fingerprint, or a unique prefix)"),
    for_: str = typer.Option("2h", "--for", help="how long the ack (and the silence) lasts, e.g. 30m, 2h"),
    comment: str = typer.Option("acknowledged with pitboss incidents ack", "--comment"),
    by: str | None = typer.Option(None, "--by", help="who acknowledges (default: the current user)"),
    db: Path = DbOption,
    alertmanager: str | None = AmOption,
) -> None:
    """Acknowledge an incident: a local ack, and an Alertmanager silence when --alertmanager is given."""
    duration = parse_duration(for_, field="--for")
    if duration <= timedelta(0) or duration > MAX_ACK:
        raise InputError(f"expected a duration between 1s and {format_duration(MAX_ACK)}, got {for_!r}",
                         field="--for")
    log = _open_log(db, required=not alertmanager)
    now = datetime.now(UTC)
    until = now + duration
    try:
        if log is not None:
            full_id = log.resolve_prefix(incident_id).id
        else:
            full_id = incident_id.lower()
            if len(full_id) != 16 or any(c not in "0123456789abcdef" for c in full_id):
                raise InputError(f"expected the 16-hex-digit incident id without a local log, got {incident_id!r}",
                                 field="ID")
        silence_id = None
        if alertmanager:
            client = AlertmanagerClient(alertmanager)
            try:
                silence_id = client.silence({"pitboss_id": full_id}, now, until,
                                            by=by or getpass.getuser(), comment=comment)
            finally:
                client.close()
        if log is not None:
            log.ack(full_id, until, comment, silence_id)
    finally:
        if log is not None:
            log.close()
    extra = f" (Alertmanager silence {silence_id})" if silence_id else " (local ack)"
    typer.echo(f"acknowledged {full_id} until {until.isoformat(timespec='seconds')}{extra}")


def register(app: typer.Typer) -> None:
    """Add the ``incidents`` command group to the root app."""
    app.add_typer(incidents_app, name="incidents")
