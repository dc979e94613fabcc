"""Read replicas for real: a PostgreSQL primary and a streaming standby started by tests/pg_cluster.py.

Proof that reads reach the standby: with replay paused, a change made on the
primary behind the casino's back is not what the casino reads; after the lag
bound passes (the primary keeps writing) it is, because the primary answers;
after ``pg_wal_replay_resume()`` the standby answers again. A player's own
writes are never read back older (read-your-writes), also across two casino
processes sharing Redis; a stopped standby costs no request an error.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.casino.conftest import ADMIN, Casino
from tests.pg_cluster import PgCluster

pytestmark = pytest.mark.postgres


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _reads(casino: Casino) -> dict[str, float]:
    text = (await casino.client.get("/metrics")).text
    return {key: _metric(text, name) for key, name in (
        ("replica", 'casino_db_reads_total{target="replica"}'), ("primary", 'casino_db_reads_total{target="primary"}'),
        ("lag", 'casino_db_replica_fallbacks_total{reason="lag"}'),
        ("ryw", 'casino_db_replica_fallbacks_total{reason="read_your_writes"}'),
        ("unreachable", 'casino_db_replica_fallbacks_total{reason="unreachable"}'))}


async def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.1)


async def _on_cluster(open_casino: Any, cluster: PgCluster, **overrides: Any) -> Casino:
    settings = {"database_url": cluster.primary.url, "read_database_url": [cluster.standby.url],
                "replica_check_seconds": 0.2, "replica_max_lag_seconds": 30.0, **overrides}
    return await open_casino("postgres", **settings)


def _bump_behind_the_casinos_back(cluster: PgCluster, schema: str, username: str, by: int) -> None:
    cluster.primary.sql(f'UPDATE "{schema}".accounts SET balance = balance + {by} '
                        f"WHERE name = 'player:{username}'")


async def _player(casino: Casino, deposit: int) -> tuple[dict[str, str], str]:
    name = f"p{secrets.token_hex(4)}"
    return await casino.player(name, deposit=deposit), name


async def _replica_has_it(casino: Casino, headers: dict[str, str], balance: int) -> bool:
    before = (await _reads(casino))["replica"]
    got = await casino.balance(headers)
    return got == balance and (await _reads(casino))["replica"] > before


async def test_reads_hit_the_standby_until_it_lags_past_the_bound(open_casino: Any,
                                                                   pg_cluster_module: PgCluster) -> None:
    cluster = pg_cluster_module
    casino = await _on_cluster(open_casino, cluster, replica_max_lag_seconds=3.0)
    schema = casino.settings.db_schema
    assert schema is not None
    h, name = await _player(casino, deposit=1000)
    await _until(lambda: _replica_has_it(casino, h, 1000), 30, "the balance read from the standby")
    cluster.pause_replay()
    paused_at = time.monotonic()
    try:
        _bump_behind_the_casinos_back(cluster, schema, name, 5)
        assert await casino.balance(h) == 1000  # the standby answered: it has not replayed the change
        sessions = cluster.standby.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                       "'pitboss-casino-read'")
        assert int(sessions) >= 1
        # The primary keeps writing (another player's deposits); the standby falls behind past the bound.
        other, _ = await _player(casino, deposit=1)

        async def primary_answers() -> bool:
            r = await casino.client.post("/v1/wallet/deposits", json={"amount": 1},
                                         headers={**other, "Idempotency-Key": casino.key()})
            assert r.status_code == 201, r.text
            return await casino.balance(h) == 1005

        await _until(primary_answers, 60, "the primary to answer once the standby lags")
        # Not before the bound: the standby is fresh as of a sample at most one check (0.2 s) before the pause.
        assert time.monotonic() - paused_at >= 3.0 - 0.2 - 0.1
        lag = cluster.replay_lag_seconds()
        assert lag is not None and lag > 3.0  # the standby's own measure agrees
        reads = await _reads(casino)
        assert reads["lag"] >= 1
        text = (await casino.client.get("/metrics")).text
        replica = f'{{replica="127.0.0.1:{cluster.standby.port}/postgres"}}'
        assert _metric(text, "casino_db_replica_lag_seconds" + replica) > 3
    finally:
        cluster.resume_replay()
    await _until(lambda: _replica_has_it(casino, h, 1005), 30, "the standby to answer again after resume")


async def test_a_player_never_reads_their_own_write_back_older(open_casino: Any,
                                                               pg_cluster_module: PgCluster) -> None:
    cluster = pg_cluster_module
    casino = await _on_cluster(open_casino, cluster)
    h, _name = await _player(casino, deposit=500)
    bystander, _ = await _player(casino, deposit=7)
    await _until(lambda: _replica_has_it(casino, bystander, 7), 30, "the standby serving reads")
    cluster.pause_replay()
    try:
        for i in range(1, 4):
            r = await casino.client.post("/v1/wallet/deposits", json={"amount": 10},
                                         headers={**h, "Idempotency-Key": casino.key()})
            assert r.status_code == 201
            assert await casino.balance(h) == 500 + 10 * i  # the primary: the standby has not replayed it
            history = (await casino.client.get("/v1/wallet/transactions", headers=h)).json()
            assert len(history) == 1 + i
        before = await _reads(casino)
        assert await casino.balance(bystander) == 7  # nobody wrote for them: the standby may answer
        after = await _reads(casino)
        assert after["replica"] == before["replica"] + 1 and after["ryw"] >= 6
        # A player registered now has a wallet the standby has not replayed: read from the primary, not a 500.
        newcomer, _ = await _player(casino, deposit=0)
        assert await casino.balance(newcomer) == 0
        # The calendar is fenced too: an event just added is listed at once.
        event = {"name": "Flash Cup", "kind": "tournament", "start": "2031-01-01T00:00:00Z",
                 "end": "2031-01-01T01:00:00Z"}
        r = await casino.client.post("/v1/admin/events", json=event, headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 201, r.text
        listed = await casino.client.get("/v1/events", params={"from": "2031-01-01T00:00:00Z",
                                                               "to": "2031-01-02T00:00:00Z"})
        assert [e["name"] for e in listed.json()] == ["Flash Cup"]
        board = await casino.client.get(f"/v1/tournaments/{r.json()['id']}/leaderboard")
        assert board.status_code == 200, board.text
    finally:
        cluster.resume_replay()
    await _until(lambda: _replica_has_it(casino, h, 530), 30, "the player's reads back on the standby")


@pytest.mark.redis
async def test_two_casino_processes_share_the_write_fence_through_redis(open_casino: Any, redis_url: str,
                                                                        pg_cluster_module: PgCluster) -> None:
    cluster = pg_cluster_module
    prefix = f"pitboss-test-{secrets.token_hex(6)}:"
    one = await _on_cluster(open_casino, cluster, redis_url=redis_url, leaderboard_prefix=prefix)
    schema = one.settings.db_schema
    two = await _on_cluster(open_casino, cluster, redis_url=redis_url, leaderboard_prefix=prefix, db_schema=schema)
    try:
        h, _name = await _player(one, deposit=100)
        await _until(lambda: _replica_has_it(two, h, 100), 30, "the second casino reading from the standby")
        cluster.pause_replay()
        try:
            r = await one.client.post("/v1/wallet/deposits", json={"amount": 1},
                                      headers={**h, "Idempotency-Key": one.key()})
            assert r.status_code == 201
            assert await two.balance(h) == 101  # the other process knows of the write: its primary answers
            assert (await _reads(two))["ryw"] >= 1
        finally:
            cluster.resume_replay()
    finally:
        client = aioredis.from_url(redis_url)
        keys = await client.keys(f"{prefix}*")
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_stopped_standby_costs_no_request_an_error(open_casino: Any, pg_cluster_module: PgCluster) -> None:
    cluster = pg_cluster_module
    casino = await _on_cluster(open_casino, cluster)
    h, _name = await _player(casino, deposit=300)
    await _until(lambda: _replica_has_it(casino, h, 300), 30, "the standby serving reads")
    cluster.standby.stop("immediate")
    try:
        for _ in range(20):  # the pooled connection dies mid-read first, then the checks notice
            r = await casino.client.get("/v1/wallet", headers=h)
            assert r.status_code == 200 and r.json()["balance"] == 300, r.text
            r = await casino.client.get("/v1/events")
            assert r.status_code == 200, r.text
            await asyncio.sleep(0.05)
        reads = await _reads(casino)
        assert reads["unreachable"] >= 20 and reads["primary"] >= 40
        text = (await casino.client.get("/metrics")).text
        assert _metric(text, f'casino_db_replica_up{{replica="127.0.0.1:{cluster.standby.port}/postgres"}}') == 0.0
    finally:
        cluster.standby.start()
    cluster.wait_streaming()
    await _until(lambda: _replica_has_it(casino, h, 300), 60, "the restarted standby serving reads again")


async def test_without_replicas_everything_reads_from_the_primary(open_casino: Any) -> None:
    casino: Casino = await open_casino("postgres")
    h = await casino.player(deposit=42)
    assert await casino.balance(h) == 42
    reads = await _reads(casino)
    assert reads["replica"] == 0 and reads["primary"] >= 1 and reads["lag"] == reads["unreachable"] == 0
