"""Routes: register (POST /v1/players), log in (POST /v1/sessions), see yourself."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from casino.api.deps import Player, State
from casino.api.problems import Problem, problem
from casino.api.schemas import PlayerCreate, PlayerOut, SessionCreate, SessionOut, from_ms
from casino.auth import Principal, hash_password, new_token, token_digest, verify_password
from casino.players import UsernameTaken

router = APIRouter(prefix="/v1", tags=["players"])
TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {"model": Problem, "description": "too many attempts for this username or client address"}}


async def rate_limit(st: State, request: Request, route: str, username: str) -> None:
    """429 with Retry-After when this username or client address has made too many attempts on ``route``."""
    address = request.client.host if request.client else "unknown"
    refusal = await st.auth_limiter.check(route, username, address)
    if refusal is None:
        return
    st.metrics.rate_limited.labels(route, refusal.scope).inc()
    headers = {"Retry-After": str(refusal.retry_after)}
    if refusal.scope == "username":
        raise problem(429, f"too many attempts for this username; retry in {refusal.retry_after} s",
                      field="username", headers=headers)
    raise problem(429, f"client address: too many attempts from {address}; retry in {refusal.retry_after} s",
                  headers=headers)


@router.post("/players", status_code=201, response_model=PlayerOut,
             responses={409: {"model": Problem, "description": "username taken"}, **TOO_MANY})
async def register(body: PlayerCreate, st: State, request: Request) -> PlayerOut:
    """Create a player with an empty wallet (rate-limited per username and client address)."""
    await rate_limit(st, request, "/v1/players", body.username)
    hashed = await asyncio.to_thread(hash_password, body.password, st.settings.scrypt_n)
    try:
        player_id = await st.players.register(body.username, hashed)
    except UsernameTaken:
        raise problem(409, f"{body.username!r} is already taken", field="username") from None
    return PlayerOut(id=player_id, username=body.username)


@router.post("/sessions", status_code=201, response_model=SessionOut,
             responses={401: {"model": Problem, "description": "username or password is wrong"}, **TOO_MANY})
async def login(body: SessionCreate, st: State, request: Request) -> SessionOut:
    """Exchange username and password for a bearer token (rate-limited per username and client address)."""
    await rate_limit(st, request, "/v1/sessions", body.username)
    found = await st.players.credentials(body.username)
    stored = found[1] if found else st.dummy_hash  # same cost whether or not the name exists
    ok = await asyncio.to_thread(verify_password, body.password, stored)
    if found is None or not ok:
        raise problem(401, "username or password is wrong")
    token = new_token()
    digest = token_digest(token)
    expires = await st.players.create_session(found[0], digest, st.settings.session_ttl_seconds)
    st.sessions.put(Principal(found[0], body.username, digest, expires))
    return SessionOut(token=token, expires_at=from_ms(expires))


@router.get("/players/{username}", response_model=PlayerOut,
            responses={403: {"model": Problem}})
async def whoami(username: Annotated[str, Path(max_length=64)], player: Player) -> PlayerOut:
    """A player may look only at themselves."""
    if username != player.username:
        raise problem(403, "you may only read your own player", field="username", loc=["path", "username"])
    return PlayerOut(id=player.player_id, username=player.username)
