"""The event calendar: admin-only writes, windowed public reads, validation naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.casino.conftest import ADMIN, Casino

ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}
EVENT = {"name": "Black Friday", "kind": "promotion", "start": "2030-11-29T18:00:00Z",
         "end": "2030-11-29T22:00:00Z", "expected_lift": 3.0, "services": ["casino-api", "wallet"]}


async def test_admin_adds_lists_and_deletes_events(casino: Casino) -> None:
    r = await casino.client.post("/v1/admin/events", json=EVENT, headers=ADMIN_H)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["start"] == "2030-11-29T18:00:00Z" and created["services"] == ["casino-api", "wallet"]
    other = {**EVENT, "name": "Jackpot", "kind": "jackpot", "start": "2030-12-01T00:00:00+01:00",
             "end": "2030-12-01T01:00:00+01:00", "expected_lift": None}
    assert (await casino.client.post("/v1/admin/events", json=other, headers=ADMIN_H)).status_code == 201
    r = await casino.client.get("/v1/events", params={"from": "2030-11-01T00:00:00Z", "to": "2031-01-01T00:00:00Z"})
    assert [(e["name"], e["kind"], e["expected_lift"]) for e in r.json()] == [
        ("Black Friday", "promotion", 3.0), ("Jackpot", "jackpot", None)]
    assert r.json()[1]["start"] == "2030-11-30T23:00:00Z"  # normalised to UTC
    r = await casino.client.get("/v1/events", params={"from": "2030-11-29T21:00:00Z", "to": "2030-11-29T21:30:00Z"})
    assert [e["name"] for e in r.json()] == ["Black Friday"]  # overlapping windows count
    r = await casino.client.get("/v1/events", params={"from": "2030-11-01T00:00:00Z", "to": "2031-01-01T00:00:00Z",
                                                      "kind": "jackpot"})
    assert [e["name"] for e in r.json()] == ["Jackpot"]
    assert (await casino.client.delete(f"/v1/admin/events/{created['id']}", headers=ADMIN_H)).status_code == 204
    assert (await casino.client.delete(f"/v1/admin/events/{created['id']}", headers=ADMIN_H)).status_code == 404
    r = await casino.client.get("/v1/events", params={"from": "2030-11-01T00:00:00Z", "to": "2031-01-01T00:00:00Z"})
    assert [e["name"] for e in r.json()] == ["Jackpot"]


async def test_only_the_admin_token_writes(casino: Casino) -> None:
    player = await casino.player()
    assert (await casino.client.post("/v1/admin/events", json=EVENT)).status_code == 401
    assert (await casino.client.post("/v1/admin/events", json=EVENT, headers=player)).status_code == 403
    bad = {"Authorization": "Bearer not-the-admin"}
    assert (await casino.client.post("/v1/admin/events", json=EVENT, headers=bad)).status_code == 403
    assert (await casino.client.delete("/v1/admin/events/1", headers=player)).status_code == 403


async def test_admin_api_is_off_without_an_admin_token(open_casino: Any) -> None:
    casino = await open_casino("sqlite", admin_token=None)
    r = await casino.client.post("/v1/admin/events", json=EVENT, headers=ADMIN_H)
    assert r.status_code == 403 and "admin_token" in r.json()["detail"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"kind": "party"}, "kind"),
        ({"end": "2030-11-29T17:00:00Z"}, "end"),
        ({"start": "not a date"}, "start"),
        ({"expected_lift": -1}, "expected_lift"),
        ({"expected_lift": 1e9}, "expected_lift"),
        ({"services": ["Not A Service!"]}, "services"),
        ({"name": ""}, "name"),
        ({"start": "0001-01-01T00:00:00Z"}, "start"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_events_are_422_naming_the_field(sqlite_casino: Casino, patch: dict[str, Any], field: str) -> None:
    r = await sqlite_casino.client.post("/v1/admin/events", json={**EVENT, **patch}, headers=ADMIN_H)
    assert r.status_code == 422, r.text
    assert field in r.text


async def test_bad_event_windows_in_queries(sqlite_casino: Casino) -> None:
    c = sqlite_casino.client
    r = await c.get("/v1/events", params={"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"})
    assert r.status_code == 422 and "to" in r.json()["detail"]
    r = await c.get("/v1/events", params={"from": "yesterday"})
    assert r.status_code == 422 and "from" in r.text
    assert (await c.get("/v1/events")).status_code == 200  # defaults: now .. now + 30 days
