"""Log-in and registration are rate-limited per username and per client address (429, Retry-After, Problem).

In-process counters by default; with Redis (the real one on 127.0.0.1:6379,
a fresh key prefix per test) every replica shares them.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.casino.conftest import Casino

LIMITS = {"auth_rate_limit_username": "3/minute", "auth_rate_limit_address": "5/minute"}


def _client(casino: Casino, address: str) -> httpx.AsyncClient:
    """Another client of the same app, from another address."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=casino.app, client=(address, 4321)),
                             base_url="http://casino.test")


def _assert_429(r: httpx.Response, field: str) -> None:
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 429 and r.json()["detail"].startswith(f"{field}: "), r.json()


async def _logins(client: httpx.AsyncClient, username: str, n: int) -> list[int]:
    return [(await client.post("/v1/sessions", json={"username": username, "password": "wrong"})).status_code
            for _ in range(n)]


async def test_log_in_is_limited_per_username_and_per_address(open_casino: Any) -> None:
    casino: Casino = await open_casino("sqlite", **LIMITS)
    assert await _logins(casino.client, "alice", 3) == [401, 401, 401]
    _assert_429(await casino.client.post("/v1/sessions", json={"username": "alice", "password": "x"}), "username")
    async with _client(casino, "10.0.0.2") as elsewhere:  # the username is limited from any address
        _assert_429(await elsewhere.post("/v1/sessions", json={"username": "alice", "password": "x"}), "username")
        assert await _logins(elsewhere, "bob", 1) == [401]
    # 127.0.0.1 made 4 attempts (the refused one counts too); the fifth is its last
    assert await _logins(casino.client, "carol", 1) == [401]
    _assert_429(await casino.client.post("/v1/sessions", json={"username": "dave", "password": "x"}),
                "client address")
    metrics = (await casino.client.get("/metrics")).text
    assert 'casino_auth_rate_limited_total{route="/v1/sessions",scope="username"} 2.0' in metrics
    assert 'casino_auth_rate_limited_total{route="/v1/sessions",scope="address"} 1.0' in metrics


async def test_registration_has_its_own_limit(open_casino: Any) -> None:
    casino: Casino = await open_casino("sqlite", **LIMITS)
    await _logins(casino.client, "erin", 3)  # log-in attempts do not use up registrations
    answers = [await casino.client.post("/v1/players", json={"username": f"new{i}", "password": "long enough"})
               for i in range(6)]
    assert [r.status_code for r in answers] == [201, 201, 201, 201, 201, 429]
    _assert_429(answers[-1], "client address")


async def test_a_refused_attempt_costs_no_password_hashing(open_casino: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import casino.api.players as players

    casino: Casino = await open_casino("sqlite", **LIMITS)
    await _logins(casino.client, "frank", 3)
    calls: list[str] = []
    monkeypatch.setattr(players, "verify_password", lambda *a: calls.append("verify") or False)
    _assert_429(await casino.client.post("/v1/sessions", json={"username": "frank", "password": "x"}), "username")
    assert calls == []


@pytest.mark.redis
async def test_replicas_share_the_limits_through_redis(open_casino: Any, redis_url: str) -> None:
    prefix = f"pitboss-test-{secrets.token_hex(6)}:"
    settings = {**LIMITS, "redis_url": redis_url, "leaderboard_prefix": prefix}
    one: Casino = await open_casino("sqlite", **settings)
    two: Casino = await open_casino("sqlite", **settings)
    try:
        assert await _logins(one.client, "grace", 2) == [401, 401]
        assert await _logins(two.client, "grace", 1) == [401]
        _assert_429(await one.client.post("/v1/sessions", json={"username": "grace", "password": "x"}), "username")
        _assert_429(await two.client.post("/v1/sessions", json={"username": "grace", "password": "x"}), "username")
        client = aioredis.from_url(redis_url)
        try:
            assert await client.keys(f"{prefix}ratelimit*")  # the counters really are in Redis
        finally:
            await client.aclose()
    finally:
        client = aioredis.from_url(redis_url)
        try:
            keys = await client.keys(f"{prefix}*")
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


async def test_a_redis_outage_does_not_stop_log_ins(open_casino: Any) -> None:
    casino: Casino = await open_casino("sqlite", **LIMITS, redis_url="redis://127.0.0.1:9/0")
    assert await _logins(casino.client, "heidi", 4) == [401, 401, 401, 401]  # not limited, not a 5xx
