"""Tournaments through the API: listing, entries, scoring during the window (both DBs, Redis too)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.casino.conftest import ADMIN, Casino

ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}


async def add_event(casino: Casino, kind: str = "tournament", start: timedelta = timedelta(hours=-1),
                    end: timedelta = timedelta(hours=1), name: str = "Friday Spins") -> dict[str, Any]:
    now = datetime.now(UTC)
    r = await casino.client.post("/v1/admin/events", headers=ADMIN_H, json={
        "name": name, "kind": kind, "start": (now + start).isoformat(), "end": (now + end).isoformat(),
        "expected_lift": 2.5, "services": ["casino-api"]})
    assert r.status_code == 201, r.text
    return r.json()


async def spin_until_a_win(casino: Casino, headers: dict[str, str]) -> int:
    total = 0
    for _ in range(200):
        r = await casino.client.post("/v1/games/slots/spins", json={"bet": 10},
                                     headers={**headers, "Idempotency-Key": casino.key()})
        assert r.status_code == 201, r.text
        total += r.json()["win"]
        if total:
            return total
    raise AssertionError("no win in 200 spins")


async def test_wins_during_the_window_score_for_entrants_only(casino: Casino) -> None:
    t = await add_event(casino)
    future = await add_event(casino, start=timedelta(hours=2), end=timedelta(hours=3), name="Later")
    alice = await casino.player("alice", deposit=100_000)
    bob = await casino.player("bob", deposit=100_000)
    r = await casino.client.post(f"/v1/tournaments/{t['id']}/entries", headers=alice)
    assert r.status_code == 201 and r.json() == {"tournament_id": t["id"], "username": "alice", "entered": True}
    r = await casino.client.post(f"/v1/tournaments/{t['id']}/entries", headers=alice)
    assert r.status_code == 200 and r.json()["entered"] is False
    assert (await casino.client.post(f"/v1/tournaments/{future['id']}/entries", headers=alice)).status_code == 201
    won = await spin_until_a_win(casino, alice)
    await spin_until_a_win(casino, bob)  # bob did not enter: no score
    board = (await casino.client.get(f"/v1/tournaments/{t['id']}/leaderboard", params={"limit": 5})).json()
    assert board == [{"rank": 1, "username": "alice", "score": won}]
    later = (await casino.client.get(f"/v1/tournaments/{future['id']}/leaderboard")).json()
    assert later == [{"rank": 1, "username": "alice", "score": 0}]  # not running yet
    listed = {x["id"]: x["status"] for x in (await casino.client.get("/v1/tournaments")).json()}
    assert listed == {t["id"]: "running", future["id"]: "upcoming"}


@pytest.mark.redis
async def test_leaderboard_on_redis(open_casino: Any) -> None:
    casino = await open_casino("sqlite", redis_url="redis://127.0.0.1:6379/0",
                               leaderboard_prefix=f"pitboss-test-{secrets.token_hex(6)}:")
    try:
        t = await add_event(casino)
        alice = await casino.player("alice", deposit=100_000)
        await casino.client.post(f"/v1/tournaments/{t['id']}/entries", headers=alice)
        won = await spin_until_a_win(casino, alice)
        board = (await casino.client.get(f"/v1/tournaments/{t['id']}/leaderboard")).json()
        assert board == [{"rank": 1, "username": "alice", "score": won}]
        key = casino.state.leaderboard.key(t["id"])
        assert await casino.state.leaderboard.client.zscore(key, "alice") == won
    finally:
        lb = casino.state.leaderboard
        keys = [k async for k in lb.client.scan_iter(match=casino.settings.leaderboard_prefix + "*")]
        if keys:
            await lb.client.delete(*keys)


async def test_unknown_finished_and_non_tournament_ids(casino: Casino) -> None:
    h = await casino.player()
    promo = await add_event(casino, kind="promotion")
    done = await add_event(casino, start=timedelta(hours=-3), end=timedelta(hours=-2))
    r = await casino.client.post("/v1/tournaments/999999/entries", headers=h)
    assert r.status_code == 404 and "tournament_id" in r.json()["detail"]
    assert (await casino.client.post(f"/v1/tournaments/{promo['id']}/entries", headers=h)).status_code == 404
    r = await casino.client.post(f"/v1/tournaments/{done['id']}/entries", headers=h)
    assert r.status_code == 409 and "finished" in r.json()["detail"]
    assert (await casino.client.get("/v1/tournaments/424242/leaderboard")).status_code == 404
    assert (await casino.client.post(f"/v1/tournaments/{done['id']}/entries")).status_code == 401


async def test_a_leaderboard_outage_is_503_and_never_fails_a_paid_spin(open_casino: Any) -> None:
    """Redis on a closed port: entries and boards answer 503 with Retry-After; spins still pay."""
    casino = await open_casino("sqlite", redis_url="redis://127.0.0.1:1/0")
    t = await add_event(casino)
    h = await casino.player(deposit=100_000)
    r = await casino.client.post(f"/v1/tournaments/{t['id']}/entries", headers=h)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1" and "leaderboard" in r.json()["detail"]
    assert (await casino.client.get(f"/v1/tournaments/{t['id']}/leaderboard")).status_code == 503
    won = await spin_until_a_win(casino, h)
    assert won > 0
