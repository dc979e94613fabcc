"""Syncing the real casino API's calendar (in process, SQLite) into TrafficEvents on the strict emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from casino.app import create_app
from casino.config import CasinoSettings
from controller.errors import InputError
from controller.operator.calendar_sync import fetch_calendar, sync_events, traffic_event_for
from controller.operator.resources import parse_event
from tests.kube.fixtures import NAMESPACE

ADMIN = {"Authorization": "Bearer admin-secret-of-at-least-32-characters"}


@pytest.fixture
def casino(tmp_path: Path) -> Any:
    settings = CasinoSettings(database_url=f"sqlite:///{tmp_path / 'casino.db'}",
                              admin_token="admin-secret-of-at-least-32-characters", scrypt_n=2)
    with TestClient(create_app(settings)) as http:
        yield http


def _add(http: TestClient, name: str, kind: str, start: datetime, hours: int, services: list[str],
         lift: float | None = None) -> int:
    body = {"name": name, "kind": kind, "start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat(),
            "expected_lift": lift, "services": services}
    response = http.post("/v1/admin/events", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_calendar_is_mirrored_into_traffic_events(casino: TestClient, kube: Any, api: Any) -> None:
    emu, _ = kube
    now = datetime.now(UTC).replace(microsecond=0)
    frenzy = _add(casino, "Friday Frenzy!", "tournament", now + timedelta(hours=5), 2, ["slots-api"], 3.5)
    bonus = _add(casino, "Black Friday bonus", "promotion", now + timedelta(days=1), 12, ["casino-api", "slots-api"])
    entries = fetch_calendar(casino, now, now + timedelta(days=30))
    report = sync_events(api, NAMESPACE, entries, {"team": "growth"})
    assert sorted(report.created) == sorted([f"friday-frenzy-{frenzy}", f"black-friday-bonus-{bonus}"])
    obj = emu.get("pitboss.dev/v1alpha1", "trafficevents", NAMESPACE, f"friday-frenzy-{frenzy}")
    assert obj["metadata"]["labels"] == {"team": "growth", "pitboss.dev/source": "casino-calendar",
                                         "pitboss.dev/calendar-id": str(frenzy),
                                         "service.pitboss.dev/slots-api": "true"}
    event = parse_event(obj)
    assert event.kind == "tournament" and event.expected_lift == 3.5 and event.name == "Friday Frenzy!"

    # Second sync: nothing changed. Then the calendar changes: one moved, one deleted.
    assert sync_events(api, NAMESPACE, entries, {"team": "growth"}).unchanged
    assert casino.delete(f"/v1/admin/events/{bonus}", headers=ADMIN).status_code == 204
    moved = [e.model_copy(update={"end": e.end + timedelta(hours=1)}) for e in fetch_calendar(
        casino, now, now + timedelta(days=30))]
    report = sync_events(api, NAMESPACE, moved, {"team": "growth"})
    assert report.updated == [f"friday-frenzy-{frenzy}"] and report.deleted == [f"black-friday-bonus-{bonus}"]
    assert emu.get("pitboss.dev/v1alpha1", "trafficevents", NAMESPACE, f"black-friday-bonus-{bonus}") is None


def test_user_made_traffic_events_are_left_alone(casino: TestClient, kube: Any, api: Any) -> None:
    emu, _ = kube
    mine = traffic_event_for(_entry(), NAMESPACE, {})
    mine["metadata"]["labels"] = {"owner": "sre"}
    emu.put_object(mine, "trafficevents")
    report = sync_events(api, NAMESPACE, [], {})
    assert report.deleted == [] and emu.get("pitboss.dev/v1alpha1", "trafficevents", NAMESPACE,
                                            mine["metadata"]["name"]) is not None


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
