"""Route: POST /v1/games/slots/spins, one idempotent spin (debit and win in one transaction)."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from casino.api.deps import CasinoState, Player, State, over_limit, request_hash
from casino.api.fastpath import FastPathRoute, fast_path
from casino.api.schemas import SpinOut, SpinRequest
from casino.api.wallet import MOVE_RESPONSES, IdempotencyKey, respond
from casino.auth import Principal
from casino.games import slots
from casino.ledger import HOUSE_SLOTS, Leg

router = APIRouter(prefix="/v1/games", tags=["games"], route_class=FastPathRoute)
log = logging.getLogger(__name__)


async def _spin(st: CasinoState, player: Principal, idempotency_key: str, body: SpinRequest) -> JSONResponse:
    if body.bet > st.settings.max_bet:
        raise over_limit("bet", body.bet, st.settings.max_bet)
    outcome = slots.spin(body.bet)
    response = {"spin_id": uuid.uuid4().hex, "bet": body.bet, "symbols": list(outcome.symbols),
                "multiplier": outcome.multiplier, "win": outcome.win, "currency": st.settings.currency}
    legs = [Leg("bet", -body.bet, HOUSE_SLOTS), Leg("win", outcome.win, HOUSE_SLOTS)]
    result = await st.ledger.move(player.player_id, idempotency_key,
                                  request_hash("/v1/games/slots/spins", body.model_dump()), legs,
                                  required=body.bet, body=response)
    answer = respond(st, "bet", result, f"bet {body.bet}")
    if result.outcome == "ok":
        st.metrics.record_bet("slots", body.bet, outcome.win)
        if outcome.win:
            st.metrics.record_wallet("win", "ok")
            await _score(st, player.username, outcome.win)
    return answer


# Well-formed spins skip FastAPI's dependency resolution (casino.api.fastpath); anything else takes FastAPI's path.
@router.post("/slots/spins", status_code=201, response_model=SpinOut, responses=MOVE_RESPONSES)
@fast_path(SpinRequest, _spin)
async def spin(body: SpinRequest, st: State, player: Player, idempotency_key: IdempotencyKey) -> JSONResponse:
    """Bet, spin three reels, get paid; the same Idempotency-Key replays the same spin."""
    return await _spin(st, player, idempotency_key, body)


async def _score(st: State, username: str, win: int) -> None:
    """Wins during a tournament window add to the entrant's score; the money has already moved."""
    try:
        for event in await st.calendar.running_tournaments():
            await st.leaderboard.add_win(event.id, username, win)
    except Exception as exc:  # a leaderboard outage must not turn a paid spin into an error
        log.warning("could not add a win to the tournament leaderboards: %s", exc)
