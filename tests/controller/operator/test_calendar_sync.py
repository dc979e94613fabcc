"""Syncing the real casino API's calendar into TrafficEvents on the strict emulator, over simulated days.

The casino is the real app (``casino.app.create_app``, SQLite) called through its ASGI app by
httpx (``fastapi.testclient.TestClient``); Kubernetes is the strict emulator behind the official
client. ``run_sync(now=...)`` is what `pitboss operator sync-events` runs, at a simulated time.
The casino API has no route to move an event, so a move is an UPDATE of the row in the casino's
own SQLite file (what an admin tool would do).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from casino.app import create_app
from casino.config import CasinoSettings
from controller.errors import InputError
from controller.operator.calendar_sync import fetch_calendar, run_sync, sync_events, traffic_event_for
from controller.operator.resources import parse_event
from tests.controller.operator.harness import policy_spec
from tests.kube.fixtures import NAMESPACE, create, scaling_policy

ADMIN_TOKEN = "sync-events-test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EVENTS = ("pitboss.dev/v1alpha1", "trafficevents")
D0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday noon, simulated


@pytest.fixture
def casino_db(tmp_path: Path) -> Path:
    return tmp_path / "casino.db"


@pytest.fixture
def casino(casino_db: Path) -> Any:
    settings = CasinoSettings(database_url=f"sqlite:///{casino_db}", admin_token=ADMIN_TOKEN, scrypt_n=2)
    with TestClient(create_app(settings)) as http:
        yield http


def _add(http: TestClient, name: str, kind: str, start: datetime, hours: float, services: list[str],
         lift: float | None = None) -> int:
    body = {"name": name, "kind": kind, "start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat(),
            "expected_lift": lift, "services": services}
    response = http.post("/v1/admin/events", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _names(emu: Any) -> set[str]:
    return {o["metadata"]["name"] for o in emu.list(*EVENTS, NAMESPACE)}


def _writes(emu: Any) -> int:
    return len([r for r in emu.log if r.method in ("POST", "PATCH", "PUT", "DELETE") and "trafficevents" in r.path])


def test_history_stays_cancelled_events_go_moved_events_follow(casino: TestClient, casino_db: Path, kube: Any,
                                                               api: Any) -> None:
    emu, _ = kube
    create(api, scaling_policy("slots", policy_spec(forecast={"model": "calendar", "step": "5m", "history": "3d"})))
    past = _add(casino, "Sunday Spin-off", "tournament", D0 - timedelta(days=1), 2, ["slots-api"], 3.0)
    tonight = _add(casino, "Monday Madness", "tournament", D0 + timedelta(hours=8), 2, ["slots-api"], 4.0)
    cancelled = _add(casino, "Wednesday Wheel", "promotion", D0 + timedelta(days=2, hours=6), 2, ["slots-api"])
    moved = _add(casino, "Thursday Thunder", "tournament", D0 + timedelta(days=3, hours=6), 1, ["slots-api"])
    far = _add(casino, "New Year Jackpot", "promotion", D0 + timedelta(days=40), 24, ["casino-api"])
    name = {past: f"sunday-spin-off-{past}", tonight: f"monday-madness-{tonight}",
            cancelled: f"wednesday-wheel-{cancelled}", moved: f"thursday-thunder-{moved}",
            far: f"new-year-jackpot-{far}"}

    # Day 0: the retention is the policy's 3d history (longer than --retention 1d): yesterday's event is kept too.
    day0 = run_sync(api, casino, NAMESPACE, now=D0, days=60, retention=timedelta(days=1))
    assert sorted(day0.created) == sorted(name.values())
    assert day0.retention == timedelta(days=3) and "scalingpolicy/slots" in day0.retention_source

    # Day 1: tonight's event has ended, one is cancelled, one is moved by two hours.
    assert casino.delete(f"/v1/admin/events/{cancelled}", headers=ADMIN).status_code == 204
    with sqlite3.connect(casino_db) as db:
        db.execute("UPDATE events SET start_ms = start_ms + 7200000, end_ms = end_ms + 7200000 WHERE id = ?",
                   (moved,))
    day1 = run_sync(api, casino, NAMESPACE, now=D0 + timedelta(days=1), days=30, retention=timedelta(days=1))
    assert day1.deleted == [name[cancelled]] and day1.updated == [name[moved]] and day1.expired == []
    assert sorted(day1.unchanged) == sorted([name[past], name[tonight]])
    assert day1.kept == [name[far]]  # beyond today's 30-day window: not asked for, left alone
    assert name[tonight] in _names(emu) and name[past] in _names(emu)  # ended, still teaching the lift
    event = parse_event(emu.get(*EVENTS, NAMESPACE, name[moved]))
    assert event.start == D0 + timedelta(days=3, hours=8) and event.end == D0 + timedelta(days=3, hours=9)

    # The same day again: idempotent, nothing written.
    writes = _writes(emu)
    again = run_sync(api, casino, NAMESPACE, now=D0 + timedelta(days=1, minutes=10), days=30,
                     retention=timedelta(days=1))
    assert not (again.created or again.updated or again.deleted or again.expired) and _writes(emu) == writes

    # Day 4: the retention window starts on day 1 at noon: the two events that ended before are garbage.
    day4 = run_sync(api, casino, NAMESPACE, now=D0 + timedelta(days=4), days=30, retention=timedelta(days=1))
    assert sorted(day4.expired) == sorted([name[past], name[tonight]]) and day4.deleted == []
    assert _names(emu) == {name[moved], name[far]}


def test_dry_run_plans_and_writes_nothing(casino: TestClient, kube: Any, api: Any) -> None:
    emu, _ = kube
    gone = _add(casino, "Flash Bonus", "promotion", D0 + timedelta(hours=2), 1, ["slots-api"])
    run_sync(api, casino, NAMESPACE, now=D0, days=7, retention=timedelta(days=1))
    assert casino.delete(f"/v1/admin/events/{gone}", headers=ADMIN).status_code == 204
    _add(casino, "Late Addition", "promotion", D0 + timedelta(hours=5), 1, ["slots-api"])
    writes = _writes(emu)
    plan = run_sync(api, casino, NAMESPACE, now=D0, days=7, retention=timedelta(days=1), dry_run=True)
    assert plan.dry_run and plan.deleted == [f"flash-bonus-{gone}"] and len(plan.created) == 1
    assert plan.summary().startswith("dry run: would create 1")
    assert _writes(emu) == writes and f"flash-bonus-{gone}" in _names(emu)


def test_calendar_is_mirrored_into_traffic_events(casino: TestClient, kube: Any, api: Any) -> None:
    emu, _ = kube
    now = datetime.now(UTC).replace(microsecond=0)
    window = (now - timedelta(days=7), now + timedelta(days=30))
    frenzy = _add(casino, "Friday Frenzy!", "tournament", now + timedelta(hours=5), 2, ["slots-api"], 3.5)
    bonus = _add(casino, "Black Friday bonus", "promotion", now + timedelta(days=1), 12, ["casino-api", "slots-api"])
    entries = fetch_calendar(casino, *window)
    report = sync_events(api, NAMESPACE, entries, {"team": "growth"}, window=window)
    assert sorted(report.created) == sorted([f"friday-frenzy-{frenzy}", f"black-friday-bonus-{bonus}"])
    obj = emu.get(*EVENTS, NAMESPACE, f"friday-frenzy-{frenzy}")
    assert obj["metadata"]["labels"] == {"team": "growth", "pitboss.dev/source": "casino-calendar",
                                         "pitboss.dev/calendar-id": str(frenzy),
                                         "service.pitboss.dev/slots-api": "true"}
    event = parse_event(obj)
    assert event.kind == "tournament" and event.expected_lift == 3.5 and event.name == "Friday Frenzy!"
    # A service dropped and a lift removed in the calendar: the labels and the spec follow (merge-patch nulls).
    changed = [e.model_copy(update={"services": ["casino-api"], "expected_lift": None})
               if e.id == frenzy else e for e in entries]
    report = sync_events(api, NAMESPACE, changed, {"team": "growth"}, window=window)
    assert report.updated == [f"friday-frenzy-{frenzy}"]
    obj = emu.get(*EVENTS, NAMESPACE, f"friday-frenzy-{frenzy}")
    assert "service.pitboss.dev/slots-api" not in obj["metadata"]["labels"] and "expectedLift" not in obj["spec"]


def test_user_made_traffic_events_are_left_alone(kube: Any, api: Any) -> None:
    emu, _ = kube
    mine = traffic_event_for(_entry(), NAMESPACE, {})
    mine["metadata"]["labels"] = {"owner": "sre"}
    emu.put_object(mine, "trafficevents")
    window = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))  # covers it
    report = sync_events(api, NAMESPACE, [], {}, window=window)
    assert report.deleted == [] and emu.get(*EVENTS, NAMESPACE, mine["metadata"]["name"]) is not None


def _entry() -> Any:
    from controller.operator.calendar_sync import CalendarEntry

    return CalendarEntry(id=7, name="Manual", kind="promotion", start=datetime(2026, 11, 27, tzinfo=UTC),
                         end=datetime(2026, 11, 28, tzinfo=UTC))


def test_malformed_calendar_answers_name_the_item_and_field() -> None:
    """The real casino never answers a bad date, so this one answer comes from an httpx MockTransport."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": 1, "name": "x", "kind": "promotion", "start": "soon",
                                          "end": "2026-11-27T00:00:00Z"}])

    with httpx.Client(base_url="http://casino", transport=httpx.MockTransport(handler)) as http, \
            pytest.raises(InputError, match="casino calendar item 0, field 'start'"):
        fetch_calendar(http, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
