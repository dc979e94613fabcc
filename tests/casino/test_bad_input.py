"""Bad input never reaches the ledger and never answers 500: a clear 4xx naming the field."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text

from casino.auth import token_digest
from tests.casino.conftest import ADMIN, Casino

AMOUNTS: list[tuple[Any, str]] = [
    (-5, "greater than 0"),
    (0, "greater than 0"),
    (10.5, "valid integer"),  # a fraction is refused (10.0 is the JSON number 10: test_whole_numbers_...)
    ("100", "valid integer"),
    (True, "valid integer"),
    (None, "valid integer"),
    (10**30, "less than or equal"),
    ([1], "valid integer"),
]


@pytest.mark.parametrize(("path", "field"), [("/v1/wallet/deposits", "amount"), ("/v1/wallet/withdrawals", "amount"),
                                             ("/v1/games/slots/spins", "bet")])
async def test_bad_amounts_are_422_naming_the_field(casino: Casino, path: str, field: str) -> None:
    """Every row of AMOUNTS against one endpoint (one app per endpoint keeps the table cheap)."""
    h = {**(await casino.player(deposit=1000)), "Idempotency-Key": "bad"}
    for amount, message in AMOUNTS:
        r = await casino.client.post(path, json={field: amount}, headers=h)
        assert r.status_code == 422, (amount, r.text)
        problem = r.json()
        err = problem["errors"][0]
        assert err["loc"] == ["body", field] and message in err["msg"], (amount, err)
        assert problem["detail"].startswith(f"{field}: ") and problem["status"] == 422, problem
        assert r.headers["content-type"] == "application/problem+json"
    assert await casino.balance(h) == 1000
    assert (await casino.client.post(path, json={field: 1}, headers=h)).status_code == 201  # the key was never used


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "amount"]),
        ({"amount": 5, "extra": 1}, ["body", "extra"]),
        ({"amuont": 5}, ["body", "amount"]),
        ([5], ["body"]),
        ("5", ["body"]),
    ],
)
async def test_missing_and_unknown_fields(sqlite_casino: Casino, body: Any, loc: list[str]) -> None:
    h = {**(await sqlite_casino.player()), "Idempotency-Key": "k"}
    r = await sqlite_casino.client.post("/v1/wallet/deposits", json=body, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"][: len(loc)] == loc


async def test_whole_numbers_written_with_a_point_are_integers(sqlite_casino: Casino) -> None:
    """JSON Schema's ``integer`` (and the JSON data model) do not tell 10.0 from 10: neither does the casino."""
    h = {**(await sqlite_casino.player()), "Idempotency-Key": "whole"}
    r = await sqlite_casino.client.post("/v1/wallet/deposits", content=b'{"amount": 10.0}',
                                        headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 201 and r.json()["amount"] == 10 and r.json()["balance"] == 10, r.text


@pytest.mark.parametrize(("raw", "status"), [(b"{bad json", 400), (b"\xff\xfe", 400), (b'{"amount": 1', 400),
                                             (b"", 422), (b"null", 422)])
async def test_malformed_json_is_4xx_naming_the_body(sqlite_casino: Casino, raw: bytes, status: int) -> None:
    """Unparsable bytes are a 400, a JSON value that is not the body's schema a 422; both Problems naming the body."""
    h = {**(await sqlite_casino.player()), "Idempotency-Key": "k", "Content-Type": "application/json"}
    r = await sqlite_casino.client.post("/v1/wallet/deposits", content=raw, headers=h)
    assert r.status_code == status, r.text
    assert r.json()["status"] == status and r.json()["detail"].startswith("body")
    assert r.headers["content-type"] == "application/problem+json"


async def test_missing_idempotency_key_is_422_naming_the_header(casino: Casino) -> None:
    h = await casino.player()
    r = await casino.client.post("/v1/wallet/deposits", json={"amount": 5}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert r.json()["detail"].startswith("Idempotency-Key: ")
    r = await casino.client.post("/v1/games/slots/spins", json={"bet": 5}, headers={**h, "Idempotency-Key": "x" * 129})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer forged-token", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 500, "Token abc"],
)
async def test_missing_or_forged_tokens_are_401(sqlite_casino: Casino, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    r = await sqlite_casino.client.get("/v1/wallet", headers=headers)
    assert r.status_code == 401, r.text
    assert "Authorization" in r.json()["detail"] and r.headers["WWW-Authenticate"] == "Bearer"


async def test_expired_tokens_are_401(open_casino: Any) -> None:
    casino = await open_casino("sqlite", session_cache_seconds=0)
    h = await casino.player()
    assert (await casino.client.get("/v1/wallet", headers=h)).status_code == 200
    digest = token_digest(h["Authorization"].removeprefix("Bearer "))
    async with casino.state.db.write() as conn:
        await conn.execute(text("UPDATE sessions SET expires_ms = :t WHERE token_hash = :h"),
                           {"t": int(time.time() * 1000) - 1, "h": digest})
    r = await casino.client.get("/v1/wallet", headers=h)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


async def test_a_cached_session_still_expires_on_time(sqlite_casino: Casino) -> None:
    h = await sqlite_casino.player()
    assert (await sqlite_casino.client.get("/v1/wallet", headers=h)).status_code == 200
    digest = token_digest(h["Authorization"].removeprefix("Bearer "))
    cached = sqlite_casino.state.sessions.get(digest)
    assert cached is not None
    object.__setattr__(cached, "expires_ms", int(time.time() * 1000) - 1)  # the session ran out meanwhile
    async with sqlite_casino.state.db.write() as conn:
        await conn.execute(text("UPDATE sessions SET expires_ms = 0 WHERE token_hash = :h"), {"h": digest})
    assert (await sqlite_casino.client.get("/v1/wallet", headers=h)).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"username": "ab", "password": "long enough"}, 422, "username"),
        ({"username": "bad name!", "password": "long enough"}, 422, "username"),
        ({"username": "carol", "password": "short"}, 422, "password"),
        ({"username": "carol"}, 422, "password"),
        ({"username": "dave", "password": "long enough"}, 409, "username"),
    ],
)
async def test_bad_registrations(sqlite_casino: Casino, body: dict[str, str], status: int, field: str) -> None:
    await sqlite_casino.player("dave")
    r = await sqlite_casino.client.post("/v1/players", json=body)
    assert r.status_code == status, r.text
    assert field in r.text


async def test_wrong_password_and_unknown_user_look_the_same(sqlite_casino: Casino) -> None:
    await sqlite_casino.player("erin")
    wrong = await sqlite_casino.client.post("/v1/sessions", json={"username": "erin", "password": "nope"})
    unknown = await sqlite_casino.client.post("/v1/sessions", json={"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/tournaments/0/leaderboard", "tournament_id"),
        ("/v1/tournaments/abc/leaderboard", "tournament_id"),
        ("/v1/tournaments/99999999999999999999999/leaderboard", "tournament_id"),
        ("/v1/tournaments/1/leaderboard?limit=0", "limit"),
        ("/v1/tournaments/1/leaderboard?limit=100000", "limit"),
        ("/v1/wallet/transactions?limit=-1", "limit"),
    ],
)
async def test_bad_path_and_query_parameters(sqlite_casino: Casino, path: str, param: str) -> None:
    h = await sqlite_casino.player()
    r = await sqlite_casino.client.get(path, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"][-1] == param and r.json()["detail"].startswith(f"{param}: ")


async def test_control_characters_are_refused_before_the_database(casino: Casino) -> None:
    """PostgreSQL text cannot hold NUL: such input must be a 422, not a driver error."""
    r = await casino.client.post("/v1/sessions", json={"username": "a\u0000bc", "password": "whatever"})
    assert r.status_code == 422 and "username" in r.text
    event = {"name": "bad\u0000name", "kind": "promotion", "start": "2030-01-01T00:00:00Z",
             "end": "2030-01-02T00:00:00Z"}
    r = await casino.client.post("/v1/admin/events", json=event, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 422 and "name" in r.text
    h = await casino.player()
    r = await casino.client.post("/v1/wallet/deposits", json={"amount": 1}, headers={**h, "Idempotency-Key": "a b"})
    assert r.status_code == 422 and "Idempotency-Key" in r.text
