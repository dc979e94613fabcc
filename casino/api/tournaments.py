"""Routes: tournaments (calendar events of kind ``tournament``), entries and leaderboards."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse

from casino.api.deps import Player, State
from casino.api.problems import Problem, problem
from casino.api.schemas import EntryOut, LeaderboardRow, TournamentOut, from_ms
from casino.events import Event

router = APIRouter(prefix="/v1/tournaments", tags=["tournaments"])
log = logging.getLogger(__name__)
TournamentId = Annotated[int, Path(ge=1, le=2**62, description="the tournament's id")]


def leaderboard_unavailable(exc: Exception) -> HTTPException:
    log.warning("leaderboard backend failed: %s", exc)
    return problem(503, "leaderboard temporarily unavailable; retry later", headers={"Retry-After": "1"})


def _out(event: Event, now_ms: int) -> TournamentOut:
    return TournamentOut(id=event.id, name=event.name, start=from_ms(event.start_ms), end=from_ms(event.end_ms),
                         status=event.status(now_ms))  # type: ignore[arg-type]


async def _tournament(st: State, tournament_id: int) -> Event:
    event = await st.calendar.get(tournament_id)
    if event is None or event.kind != "tournament":
        raise problem(404, f"no tournament {tournament_id}", field="tournament_id", loc=["path", "tournament_id"])
    return event


@router.get("", response_model=list[TournamentOut])
async def tournaments(st: State, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[TournamentOut]:
    """Tournaments, latest first, with their status now."""
    now_ms = int(time.time() * 1000)
    return [_out(e, now_ms) for e in await st.calendar.tournaments(limit)]


@router.post("/{tournament_id}/entries", status_code=201, response_model=EntryOut,
             responses={200: {"model": EntryOut, "description": "already entered"},
                        404: {"model": Problem, "description": "no such tournament"},
                        409: {"model": Problem, "description": "the tournament has finished"},
                        503: {"model": Problem, "description": "the leaderboard backend is down"}})
async def enter(tournament_id: TournamentId, st: State, player: Player) -> JSONResponse:
    """Enter a tournament that has not finished; entering twice is harmless (200)."""
    event = await _tournament(st, tournament_id)
    if event.status(int(time.time() * 1000)) == "finished":
        raise problem(409, f"tournament {tournament_id} has finished", field="tournament_id",
                      loc=["path", "tournament_id"])
    new = await st.calendar.enter(event.id, player.player_id)
    if new:
        st.metrics.tournament_entries.inc()
    try:
        await st.leaderboard.enter(event.id, player.username)
    except Exception as exc:  # Redis down: the entry is recorded; the client should retry to get on the board
        raise leaderboard_unavailable(exc) from None
    body = EntryOut(tournament_id=event.id, username=player.username, entered=new)
    return JSONResponse(body.model_dump(), status_code=201 if new else 200)


@router.get("/{tournament_id}/leaderboard", response_model=list[LeaderboardRow],
            responses={404: {"model": Problem, "description": "no such tournament"},
                       503: {"model": Problem, "description": "the leaderboard backend is down"}})
async def leaderboard(tournament_id: TournamentId, st: State,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> list[LeaderboardRow]:
    """Best entrants by the sum of their wins during the tournament window."""
    await _tournament(st, tournament_id)
    try:
        top = await st.leaderboard.top(tournament_id, limit)
    except Exception as exc:  # Redis down
        raise leaderboard_unavailable(exc) from None
    return [LeaderboardRow(rank=i + 1, username=name, score=score) for i, (name, score) in enumerate(top)]
