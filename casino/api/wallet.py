"""Routes: the caller's wallet, idempotent deposits and withdrawals, their ledger history."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from casino.api.deps import MoneyResponse, Player, State, over_limit, request_hash
from casino.api.problems import Problem, problem
from casino.api.schemas import AmountRequest, LedgerEntryOut, TransactionOut, WalletOut, from_ms
from casino.ledger import HOUSE_CASH, Leg, MoveResult

router = APIRouter(prefix="/v1/wallet", tags=["wallet"])
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$",
                                       description="client-chosen key; a retry with the same key and body "
                                                   "replays the first answer")]
MOVE_RESPONSES: dict[int | str, dict[str, object]] = {
    409: {"model": Problem, "description": "insufficient funds"},
    422: {"model": Problem, "description": "invalid body, or Idempotency-Key reused with a different body"},
}


def respond(st: State, kind: str, result: MoveResult, detail: str) -> JSONResponse:
    """Turn a ledger result into the HTTP answer and count it."""
    st.metrics.record_wallet(kind, result.outcome)
    if result.outcome == "insufficient_funds":
        raise problem(409, f"insufficient funds: balance {result.balance} < {detail}")
    if result.outcome == "conflict":
        raise problem(422, "already used with a different request; use a new key", field="Idempotency-Key",
                      loc=["header", "Idempotency-Key"])
    headers = {"Idempotent-Replayed": "true"} if result.outcome == "replayed" else None
    return MoneyResponse(result.body, status_code=result.status_code, headers=headers)


@router.get("", response_model=WalletOut)
async def wallet(st: State, player: Player) -> WalletOut:
    return WalletOut(balance=await st.ledger.balance(player.player_id), currency=st.settings.currency)


async def _move(st: State, player: Player, kind: Literal["deposit", "withdrawal"], body: AmountRequest,
                key: str, path: str) -> JSONResponse:
    if body.amount > st.settings.max_amount:
        raise over_limit("amount", body.amount, st.settings.max_amount)
    signed = body.amount if kind == "deposit" else -body.amount
    response = {"transaction_id": uuid.uuid4().hex, "type": kind, "amount": body.amount,
                "currency": st.settings.currency}
    result = await st.ledger.move(
        player.player_id, key, request_hash(path, body.model_dump()), [Leg(kind, signed, HOUSE_CASH)],
        required=body.amount if kind == "withdrawal" else 0, body=response)
    answer = respond(st, kind, result, f"amount {body.amount}")
    if result.outcome == "ok":
        st.metrics.record_money(kind, body.amount)
    return answer


@router.post("/deposits", status_code=201, response_model=TransactionOut, responses=MOVE_RESPONSES)
async def deposit(body: AmountRequest, st: State, player: Player, idempotency_key: IdempotencyKey) -> JSONResponse:
    """Add money to the wallet (from the house cash account)."""
    return await _move(st, player, "deposit", body, idempotency_key, "/v1/wallet/deposits")


@router.post("/withdrawals", status_code=201, response_model=TransactionOut, responses=MOVE_RESPONSES)
async def withdraw(body: AmountRequest, st: State, player: Player, idempotency_key: IdempotencyKey) -> JSONResponse:
    """Take money out; 409 when the balance does not cover it."""
    return await _move(st, player, "withdrawal", body, idempotency_key, "/v1/wallet/withdrawals")


@router.get("/transactions", response_model=list[LedgerEntryOut])
async def transactions(st: State, player: Player, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       before: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> list[LedgerEntryOut]:
    """The caller's own ledger entries, newest first (page with ?before=<id>)."""
    rows = await st.ledger.history(player.player_id, limit, before)
    return [LedgerEntryOut(id=r["id"], transaction_id=r["transaction_id"], type=r["type"], amount=r["amount"],
                           created_at=from_ms(r["created_ms"])) for r in rows]
