"""Leaderboard backends: real Redis sorted sets and the in-process default, same behaviour."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from casino.leaderboard import InMemoryLeaderboard, Leaderboard, RedisLeaderboard


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def board(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Leaderboard]:
    if request.param == "memory":
        yield InMemoryLeaderboard()
        return
    prefix = f"pitboss-test-{secrets.token_hex(6)}:"
    lb = RedisLeaderboard(redis_url, prefix)
    try:
        yield lb
    finally:
        keys = [k async for k in lb.client.scan_iter(match=prefix + "*")]
        if keys:
            await lb.client.delete(*keys)
        await lb.close()


async def test_only_entrants_score_and_scores_accumulate(board: Leaderboard) -> None:
    await board.ping()
    assert await board.enter(1, "alice") is True
    assert await board.enter(1, "alice") is False
    await board.enter(1, "bob")
    await board.add_win(1, "alice", 50)
    await board.add_win(1, "alice", 25)
    await board.add_win(1, "bob", 100)
    await board.add_win(1, "mallory", 10_000)  # never entered
    await board.add_win(2, "alice", 5)  # another tournament, not entered
    assert await board.top(1, 10) == [("bob", 100), ("alice", 75)]
    assert await board.top(1, 1) == [("bob", 100)]
    assert await board.top(2, 10) == []


async def test_ties_order_by_name(board: Leaderboard) -> None:
    for name in ("carol", "alice", "bob"):
        await board.enter(7, name)
        await board.add_win(7, name, 10)
    assert await board.top(7, 3) == [("alice", 10), ("bob", 10), ("carol", 10)]
