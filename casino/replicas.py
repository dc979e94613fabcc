"""Read replicas: which server may answer a read-only query, measured once a second (PostgreSQL standbys).

Created by ``casino.db.Database`` when ``read_database_url`` is set; its check
loop runs for the app's lifetime. Every ``replica_check_seconds`` it samples
the primary's WAL position (``pg_current_wal_lsn()``) and then asks each
replica how far it has replayed (``pg_last_wal_replay_lsn()``) and whether it
is a standby at all (``pg_is_in_recovery()``). A replica is *fresh as of*
the latest sample whose position it has replayed: it holds every transaction
that had committed on the primary when that sample was taken. Its lag is the
age of that point: an idle primary reads as no lag (its position does not
move, the replica has it), a paused or disconnected standby's lag grows by
the second, and a standby that cannot say where it is (not streaming yet)
has unknown lag. A replica serves reads only while its last check succeeded
recently, it is a standby, and its lag is within ``replica_max_lag_seconds``;
otherwise the primary answers (``casino_db_replica_fallbacks_total{reason}``).
A lookup that finds nothing on a replica (a wallet, an event) is asked again
of the primary (reason ``missing``): another process may have just created it.

Read-your-writes: the casino remembers, per player (and for the calendar),
when it last wrote for them, after the commit returned. A replica serves that
player's reads only if it is fresh as of a sample taken after that write, so
a player's balance or history never goes back after their own spin or
deposit. Within one process this is exact (monotonic clock). Across workers
and replicas of the casino it holds when Redis is configured: the write time
is also stored in Redis (``<prefix>rw:<key>``, kept for the lag bound), and
compared with a margin for clock differences between hosts
(``CLOCK_MARGIN``); without Redis another process can serve a read up to the
lag bound old.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from casino.config import CasinoSettings

log = logging.getLogger(__name__)
CLOCK_MARGIN = 0.25  # seconds: how far the clocks of two casino hosts may disagree (NTP keeps them far closer)
SAMPLES = 64  # primary positions kept: a replica up to SAMPLES checks behind still has a known lag
_PRIMARY_LSN = text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
_REPLICA_STATE = text("SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")

Observe = Callable[[str, bool, float | None], None]  # (replica, up, lag seconds or None)


@dataclass
class Replica:
    """One read replica and what its last check found."""

    name: str  # host:port/database, no credentials
    engine: AsyncEngine
    checked_at: float | None = None  # monotonic time of the last successful check
    standby: bool = True
    fresh_at: float | None = None  # monotonic time of the newest primary sample it has replayed
    fresh_wall: float | None = None  # the same moment on the wall clock (compared with other hosts' writes)
    error: str | None = None

    def lag(self, now: float) -> float | None:
        return None if self.fresh_at is None else max(0.0, now - self.fresh_at)


@dataclass
class Route:
    """Where a read goes: a replica, or None and why not."""

    replica: Replica | None
    reason: str | None = None


@dataclass
class _Sample:
    at: float
    wall: float
    lsn: int


@dataclass
class ReplicaRouter:
    """Chooses a replica for each read; ``run`` keeps the replicas' state fresh."""

    settings: CasinoSettings
    primary: AsyncEngine
    observe: Observe | None = None
    redis: Any = None  # redis.asyncio client for the shared write fence, or None
    prefix: str = "pitboss:"
    replicas: list[Replica] = field(default_factory=list)
    _samples: deque[_Sample] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    _written: dict[str, float] = field(default_factory=dict)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def build(cls, settings: CasinoSettings, primary: AsyncEngine, server_settings: dict[str, str],
              observe: Observe | None = None) -> ReplicaRouter:
        router = cls(settings, primary, observe)
        for url in settings.read_database_url:
            parsed = make_url(url)
            name = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
            engine = create_async_engine(parsed, pool_size=settings.read_pool_size, max_overflow=0, pool_timeout=5,
                                         connect_args={"server_settings": {**server_settings,
                                                                           "application_name": "pitboss-casino-read"},
                                                       "timeout": 3, "command_timeout": 10})
            router.replicas.append(Replica(name, engine))
        if settings.redis_url:
            import redis.asyncio as aioredis

            router.redis = aioredis.from_url(settings.redis_url, socket_timeout=2)
            router.prefix = settings.leaderboard_prefix
        return router

    # ------------------------------------------------------------------ routing

    def wrote_local(self, key: str) -> None:
        """Record, after the commit returned, that this process just wrote ``key``'s data."""
        self._written[key] = time.monotonic()

    async def wrote(self, key: str) -> None:
        """``wrote_local``, and (with Redis) tell the other casino processes too."""
        self.wrote_local(key)
        if self.redis is not None:
            ttl_ms = int((self.settings.replica_max_lag_seconds + 2 * self.settings.replica_check_seconds + 1) * 1000)
            try:
                await self.redis.set(f"{self.prefix}rw:{key}", repr(time.time()), px=ttl_ms)
            except Exception as exc:  # the local fence still holds; other processes fall back to their lag bound
                log.warning("could not share a write fence through Redis: %s", exc)

    async def route(self, key: str | None) -> Route:
        """The replica that may serve a read of ``key``'s data now (round robin among those that may)."""
        now = time.monotonic()
        usable: list[Replica] = []
        reason = "unreachable"
        for replica in self.replicas:
            why = self._unusable(replica, now)
            if why is None:
                usable.append(replica)
            elif reason == "unreachable" or why == "lag":
                reason = why
        if not usable:
            return Route(None, reason)
        if key is not None:
            written = self._written.get(key)
            if written is not None:
                usable = [r for r in usable if (r.fresh_at or 0.0) > written]
            remote = await self._remote_write(key) if usable else None
            if remote is not None:
                usable = [r for r in usable if (r.fresh_wall or 0.0) > remote + CLOCK_MARGIN]
            if not usable:
                return Route(None, "read_your_writes")
        return Route(usable[next(self._turn) % len(usable)])

    def _unusable(self, replica: Replica, now: float) -> str | None:
        stale_after = 3 * self.settings.replica_check_seconds + 1.0
        if replica.checked_at is None or now - replica.checked_at > stale_after:
            return "unreachable"
        if not replica.standby:
            return "not_standby"
        lag = replica.lag(now)
        if lag is None or lag > self.settings.replica_max_lag_seconds:
            return "lag"
        return None

    async def _remote_write(self, key: str) -> float | None:
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(f"{self.prefix}rw:{key}")
        except Exception:  # no shared fence: this read goes to the primary
            return float("inf")
        return None if raw is None else float(raw)

    def snapshot(self) -> list[tuple[str, bool, float | None]]:
        """(replica, up, lag now) of every replica, for the gauges at scrape time."""
        now = time.monotonic()
        return [(r.name, self._unusable(r, now) != "unreachable", r.lag(now)) for r in self.replicas]

    def mark_down(self, replica: Replica, exc: BaseException) -> None:
        """A read on ``replica`` failed: no more reads there until a check succeeds again."""
        replica.checked_at = None
        replica.error = f"{type(exc).__name__}: {exc}"
        log.warning("read replica %s failed, reading from the primary: %s", replica.name, replica.error)

    # ------------------------------------------------------------------ measuring

    async def check(self) -> None:
        """One round: sample the primary's position, then ask every replica how far it has replayed."""
        timeout = max(1.0, 2 * self.settings.replica_check_seconds)
        at, wall = time.monotonic(), time.time()
        try:
            async with asyncio.timeout(timeout), self.primary.connect() as conn:
                lsn = int((await conn.execute(_PRIMARY_LSN)).scalar_one())
            self._samples.append(_Sample(at, wall, lsn))
        except Exception as exc:  # the primary is away: replicas keep their last state (and age)
            log.warning("could not read the primary's WAL position: %s", exc)
        await asyncio.gather(*(self._check(replica, timeout) for replica in self.replicas))
        self._prune(time.monotonic())

    async def _check(self, replica: Replica, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout), replica.engine.connect() as conn:
                standby, replayed = (await conn.execute(_REPLICA_STATE)).one()
        except Exception as exc:  # unreachable, refusing connections, or too slow to answer
            replica.checked_at, replica.error = None, f"{type(exc).__name__}: {exc}"
            self._observe(replica, False, None)
            return
        replica.checked_at, replica.standby, replica.error = time.monotonic(), bool(standby), None
        if replayed is not None:
            for sample in reversed(self._samples):
                if sample.lsn <= int(replayed):
                    if replica.fresh_at is None or sample.at > replica.fresh_at:
                        replica.fresh_at, replica.fresh_wall = sample.at, sample.wall
                    break
        self._observe(replica, True, replica.lag(time.monotonic()))

    def _observe(self, replica: Replica, up: bool, lag: float | None) -> None:
        if self.observe is not None:
            self.observe(replica.name, up, lag)

    def _prune(self, now: float) -> None:
        """Forget writes older than any replica that may serve reads can be: they no longer fence anything."""
        horizon = now - self.settings.replica_max_lag_seconds - 2 * self.settings.replica_check_seconds - 1.0
        if len(self._written) > 1000:
            self._written = {k: t for k, t in self._written.items() if t >= horizon}

    async def run(self) -> None:
        """Check forever, every ``replica_check_seconds`` (started by the app, cancelled at shutdown)."""
        while True:
            started = time.monotonic()
            try:
                await self.check()
            except Exception as exc:  # never let the loop die: reads fall back while it cannot measure
                log.warning("replica check failed: %s", exc)
            await asyncio.sleep(max(0.05, self.settings.replica_check_seconds - (time.monotonic() - started)))

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()

