"""Rate limits on log-in and registration: per username and per client address (the ``limits`` library).

Built by ``casino.app.open_state``; called by ``casino.api.players`` before any
password hashing, so a flood of attempts costs the casino a counter, not
scrypt. Moving windows (an attempt counts for exactly the window after it).
With ``redis_url`` the counters live in Redis, shared by every worker and
replica; without it they are in-process, per worker. If Redis fails the
attempt is let through and logged: a rate limiter must not turn a Redis
outage into a log-in outage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is refused and when to come back."""

    scope: str  # "username" or "address"
    retry_after: int  # whole seconds, >= 1


def _storage(redis_url: str | None, prefix: str) -> Storage:
    if not redis_url:
        return MemoryStorage()
    scheme, rest = redis_url.split("://", 1)
    async_scheme = {"redis": "async+redis", "rediss": "async+rediss", "unix": "async+redis+unix"}[scheme]
    return RedisStorage(f"{async_scheme}://{rest}", implementation="redispy", key_prefix=f"{prefix}ratelimit",
                        socket_timeout=5)


class AuthRateLimiter:
    """``check(route, username, address)``: None when the attempt may go ahead, else a Refusal."""

    def __init__(self, per_username: str, per_address: str, redis_url: str | None, prefix: str) -> None:
        self.items: dict[str, RateLimitItem] = {"address": parse(per_address), "username": parse(per_username)}
        self.storage = _storage(redis_url, prefix)
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def check(self, route: str, username: str, address: str) -> Refusal | None:
        for scope, key in (("address", address), ("username", username)):
            item = self.items[scope]
            try:
                if await self.limiter.hit(item, route, scope, key):
                    continue
                stats = await self.limiter.get_window_stats(item, route, scope, key)
            except Exception as exc:  # the backend is down: let the attempt through, say so
                log.warning("rate limiter unavailable, not limiting %s: %s", route, exc)
                return None
            return Refusal(scope, max(1, math.ceil(stats.reset_time - time.time())))
        return None

    async def close(self) -> None:
        """Close the Redis client (limits keeps it on its bridge) or stop the in-memory expiry task."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()
        timer = getattr(self.storage, "timer", None)
        if timer is not None:
            timer.cancel()
