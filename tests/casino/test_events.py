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
        # Strict timestamps: RFC 3339 strings with a timezone, years 1970-8999, nothing else.
        ({"start": 1893456000}, "start"),
        ({"end": 1893456000.5}, "end"),
        ({"start": "2030-11-29T18:00:00"}, "start"),  # no timezone
        ({"start": "2030-11-29"}, "start"),
        ({"start": "2030-11-29 18:00:00Z"}, "start"),
        ({"start": "2030-02-30T18:00:00Z"}, "start"),
        ({"end": "9000-01-01T00:00:00Z"}, "end"),
        ({"start": "1969-12-31T23:59:59Z"}, "start"),
    ],
)
async def test_bad_events_are_422_naming_the_field(sqlite_casino: Casino, patch: dict[str, Any], field: str) -> None:
    r = await sqlite_casino.client.post("/v1/admin/events", json={**EVENT, **patch}, headers=ADMIN_H)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["detail"].startswith(f"{field}: ") and problem["errors"][0]["field"] == field, problem


async def test_out_of_range_timestamps_are_4xx_not_500(casino: Casino) -> None:
    """The 500 found by the fuzz test on PostgreSQL: an offset that moves year 1 to year 0 overflowed."""
    body = {"end": "0001-01-01T00:00:03+17:01", "kind": "jackpot", "name": "0", "start": "0056-01-01T00:00:00Z"}
    r = await casino.client.post("/v1/admin/events", json=body, headers=ADMIN_H)
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == {"start", "end"}
    r = await casino.client.get("/v1/events", params={"from": "0001-01-01T00:00:03+17:01"})
    assert r.status_code == 422 and r.json()["detail"].startswith("from: "), r.text


async def test_lower_case_and_offsets_are_rfc_3339(sqlite_casino: Casino) -> None:
    r = await sqlite_casino.client.post("/v1/admin/events", headers=ADMIN_H, json={
        **EVENT, "start": "2030-11-29t18:00:00.25+23:59", "end": "2030-11-29T23:00:00z"})
    assert r.status_code == 201, r.text
    assert r.json()["start"] == "2030-11-28T18:01:00.250000Z"


async def test_bad_event_windows_in_queries(sqlite_casino: Casino) -> None:
    c = sqlite_casino.client
    assert (await c.post("/v1/admin/events", json=EVENT, headers=ADMIN_H)).status_code == 201
    # An empty window has no events (no rule across query parameters that the schema cannot state).
    r = await c.get("/v1/events", params={"from": "2030-11-29T20:00:00Z", "to": "2030-11-29T19:00:00Z"})
    assert r.status_code == 200 and r.json() == []
    for bad in ("yesterday", "2030-01-01", "1893456000", "2030-01-01T00:00:00"):
        r = await c.get("/v1/events", params={"from": bad})
        assert r.status_code == 422 and r.json()["detail"].startswith("from: "), (bad, r.text)
    assert (await c.get("/v1/events")).status_code == 200  # defaults: now .. now + 30 days
