"""The casino FastAPI application factory: ``create_app(settings)``.

Called by ``pitboss casino serve`` (uvicorn), ``pitboss demo``, the benchmark
and the tests. Start-up opens the database, runs pending migrations, loads
the house accounts, starts measuring the read replicas and connects the
leaderboard backend; shutdown closes them. Every error is a Problem
(``casino.api.problems``) and the OpenAPI document is completed by
``casino.api.contract``. Each app has its own Prometheus registry, so several
apps can live in one process (tests) without colliding; several uvicorn
workers share theirs through prometheus-client's multiprocess files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from casino.api import contract, events, games, ops, players, problems, tournaments, wallet
from casino.api.deps import CasinoState
from casino.auth import SessionCache, dummy_hash
from casino.config import CasinoSettings
from casino.db import Database
from casino.events import Calendar
from casino.games import slots
from casino.leaderboard import make_leaderboard
from casino.ledger import Ledger
from casino.metrics import CasinoMetrics, forget_dead_workers
from casino.middleware import AdmissionMiddleware, MetricsMiddleware, route_table
from casino.migrations import migrate
from casino.players import Players
from casino.ratelimit import AuthRateLimiter

log = logging.getLogger(__name__)


async def open_state(settings: CasinoSettings, metrics: CasinoMetrics) -> CasinoState:
    """Connect everything the API needs and bring the schema up to date."""
    db = Database(settings, on_read=metrics.record_read, on_replica=metrics.observe_replica)
    try:
        applied = await migrate(db)
        if applied:
            log.info("applied casino migrations %s", applied)
        ledger = Ledger(db, settings.currency)
        await ledger.load_house_accounts()
        if db.is_postgres:
            await db.movement_pool()  # open it now: the first spin should not pay for the connections
        await db.start_replica_checks()
    except BaseException:
        await db.dispose()
        raise
    leaderboard = make_leaderboard(settings.redis_url, settings.leaderboard_prefix)
    return CasinoState(
        settings=settings, db=db, ledger=ledger, players=Players(db, ledger),
        calendar=Calendar(db, settings.tournament_refresh_seconds), leaderboard=leaderboard, metrics=metrics,
        sessions=SessionCache(settings.session_cache_seconds), dummy_hash=dummy_hash(settings.scrypt_n),
        auth_limiter=AuthRateLimiter(settings.auth_rate_limit_username, settings.auth_rate_limit_address,
                                     settings.redis_url, settings.leaderboard_prefix),
    )


async def close_state(st: CasinoState) -> None:
    await st.auth_limiter.close()
    await st.leaderboard.close()
    await st.db.dispose()


async def refresh_gauges_every(st: CasinoState, seconds: float = 1.0) -> None:
    """Background task (several workers): the scrape reaches one worker, so each keeps its own gauges fresh."""
    while True:
        st.refresh_gauges()
        await asyncio.sleep(seconds)


async def purge_idempotency_keys(st: CasinoState, every_seconds: float = 600.0) -> None:
    """Background task: drop idempotency keys older than ``idempotency_ttl_hours``, every ten minutes."""
    while True:
        try:
            cutoff = int((time.time() - st.settings.idempotency_ttl_hours * 3600) * 1000)
            purged = await st.ledger.purge_idempotency_keys(cutoff)
            if purged:
                log.info("purged %d expired idempotency keys", purged)
        except Exception as exc:  # the database may be briefly away; try again next round
            log.warning("could not purge idempotency keys: %s", exc)
        await asyncio.sleep(every_seconds)


def create_app(settings: CasinoSettings | None = None) -> FastAPI:
    """A casino API on ``settings`` (defaults: SQLite under var/, in-process leaderboards)."""
    settings = settings or CasinoSettings()
    metrics = CasinoMetrics(settings.max_in_flight)
    metrics.rtp_theoretical.labels("slots").set(float(slots.RTP))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if metrics.multiprocess_dir is not None:
            forget_dead_workers(metrics.multiprocess_dir)
        st = await open_state(settings, metrics)
        app.state.casino = st
        tasks = [asyncio.create_task(purge_idempotency_keys(st))]
        if metrics.multiprocess_dir is not None:
            tasks.append(asyncio.create_task(refresh_gauges_every(st)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await close_state(st)
            metrics.close()

    app = FastAPI(
        title="Pitboss reference casino API",
        version="1.0.0",
        description="Wallet (double-entry ledger), slots, tournaments and the event calendar that Pitboss reads.",
        lifespan=lifespan,
    )
    problems.install(app)
    # Spins are the hottest route: their router is matched first (route paths do not overlap, so the
    # order changes nothing but the order of the OpenAPI document).
    routers = [m.router for m in (games, wallet, players, tournaments, events, ops)]
    for router in routers:
        app.include_router(router)
    app.add_middleware(AdmissionMiddleware, metrics=metrics, max_in_flight=settings.max_in_flight,
                       retry_after=settings.retry_after_seconds, routes=route_table(routers))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.metrics = metrics
    app.state.settings = settings
    _complete_openapi(app, settings)
    return app


def _complete_openapi(app: FastAPI, settings: CasinoSettings) -> None:
    """Serve the OpenAPI document completed by ``casino.api.contract`` (built once, on first request)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = contract.document(plain(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """uvicorn factory (``casino.app:create_app_from_env``): settings from ``PITBOSS_CASINO_*``."""
    return create_app(CasinoSettings.from_env())
