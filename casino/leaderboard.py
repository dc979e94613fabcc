"""Tournament leaderboards: Redis sorted sets in production, a dict by default.

Called by ``casino.api.tournaments`` (enter, read) and ``casino.api.games``
(a win during a tournament window adds to the entrant's score). Only entrants
score: ``add_win`` never creates a member.
"""

from __future__ import annotations

from typing import Any, Protocol

import redis.asyncio as aioredis


class Leaderboard(Protocol):
    async def enter(self, tournament_id: int, member: str) -> bool:
        """Add ``member`` with score 0; False when already entered."""
        ...

    async def add_win(self, tournament_id: int, member: str, amount: int) -> None:
        """Add ``amount`` to an entrant's score (no-op for non-entrants)."""
        ...

    async def top(self, tournament_id: int, limit: int) -> list[tuple[str, int]]:
        """Best ``limit`` entrants, highest score first, ties by name."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class InMemoryLeaderboard:
    """The embedded default: per-process, lost on restart (fine for one replica)."""

    def __init__(self) -> None:
        self._boards: dict[int, dict[str, int]] = {}

    async def enter(self, tournament_id: int, member: str) -> bool:
        board = self._boards.setdefault(tournament_id, {})
        if member in board:
            return False
        board[member] = 0
        return True

    async def add_win(self, tournament_id: int, member: str, amount: int) -> None:
        board = self._boards.get(tournament_id)
        if board is not None and member in board:
            board[member] += amount

    async def top(self, tournament_id: int, limit: int) -> list[tuple[str, int]]:
        board = self._boards.get(tournament_id, {})
        return sorted(board.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisLeaderboard:
    """One sorted set per tournament: ``<prefix>tournament:<id>:scores``."""

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.client: Any = aioredis.from_url(url, decode_responses=True, socket_timeout=5)

    def key(self, tournament_id: int) -> str:
        return f"{self.prefix}tournament:{tournament_id}:scores"

    async def enter(self, tournament_id: int, member: str) -> bool:
        return bool(await self.client.zadd(self.key(tournament_id), {member: 0}, nx=True))

    async def add_win(self, tournament_id: int, member: str, amount: int) -> None:
        await self.client.zadd(self.key(tournament_id), {member: amount}, xx=True, incr=True)

    async def top(self, tournament_id: int, limit: int) -> list[tuple[str, int]]:
        rows = await self.client.zrevrange(self.key(tournament_id), 0, limit - 1, withscores=True)
        pairs = [(str(m), int(s)) for m, s in rows]
        return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


def make_leaderboard(redis_url: str | None, prefix: str) -> Leaderboard:
    return RedisLeaderboard(redis_url, prefix) if redis_url else InMemoryLeaderboard()
