"""What every router shares: the app's state, bearer-token auth, request hashing.

Used by the routers in ``casino.api``; ``casino.app`` builds the ``CasinoState``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from casino.api.problems import ProblemException, problem
from casino.auth import Principal, SessionCache, token_digest
from casino.config import CasinoSettings
from casino.db import Database
from casino.events import Calendar
from casino.leaderboard import Leaderboard
from casino.ledger import Ledger
from casino.metrics import CasinoMetrics
from casino.players import Players
from casino.ratelimit import AuthRateLimiter


@dataclass
class CasinoState:
    settings: CasinoSettings
    db: Database
    ledger: Ledger
    players: Players
    calendar: Calendar
    leaderboard: Leaderboard
    metrics: CasinoMetrics
    sessions: SessionCache
    dummy_hash: str
    auth_limiter: AuthRateLimiter

    def refresh_gauges(self) -> None:
        """The gauges measured rather than counted: database pool use, active sessions, replica lag now."""
        in_use, size = self.db.pool_stats()
        self.metrics.pool_in_use.set(in_use)
        self.metrics.pool_size.set(size)
        self.metrics.active_sessions.set(self.sessions.active())
        if self.db.replicas is not None:
            for name, up, lag in self.db.replicas.snapshot():
                self.metrics.observe_replica(name, up, lag)


async def state(request: Request) -> CasinoState:
    return request.app.state.casino


State = Annotated[CasinoState, Depends(state)]
bearer = HTTPBearer(auto_error=False, description="a token from POST /v1/sessions (players) or the admin token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


INVALID_TOKEN = "Authorization: token is invalid or expired; log in again at POST /v1/sessions"


def unauthorized(detail: str) -> HTTPException:
    return problem(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_player(st: State, credentials: Credentials) -> Principal:
    """The player behind the bearer token: 401 when missing, unknown, forged or expired."""
    if credentials is None or not credentials.credentials:
        raise unauthorized("Authorization: expected 'Bearer <token>' from POST /v1/sessions")
    principal = await authenticate(st, credentials.credentials)
    if principal is None:
        raise unauthorized(INVALID_TOKEN)
    return principal


async def authenticate(st: CasinoState, token: str) -> Principal | None:
    """The live session behind a bearer token (cached for a while), or None; marks the token active."""
    digest = token_digest(token)
    principal = st.sessions.get(digest)
    if principal is None:
        principal = await st.players.session(digest)
        if principal is None:
            return None
        st.sessions.put(principal)
    st.sessions.touch(digest)
    return principal


Player = Annotated[Principal, Depends(current_player)]


async def require_admin(st: State, credentials: Credentials) -> None:
    """Only the configured admin token manages the calendar."""
    expected = st.settings.admin_token
    if expected is None:
        raise problem(403, "admin API disabled: start the casino with an admin_token")
    if credentials is None or not credentials.credentials:
        raise unauthorized("Authorization: expected 'Bearer <admin token>'")
    given = credentials.credentials.encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise problem(403, "Authorization: not the admin token")


Admin = Depends(require_admin)


# Encoders built once: ``json.dumps`` with any non-default option builds a new encoder per call.
# Their output is byte-for-byte what the json.dumps calls they replace produce (stored request
# hashes stay valid across versions).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_RESPONSE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class MoneyResponse(JSONResponse):
    """Starlette's JSONResponse, rendered with a prebuilt encoder (identical bytes)."""

    def render(self, content: Any) -> bytes:
        return _RESPONSE.encode(content).encode("utf-8")


def request_hash(path: str, body: dict[str, Any]) -> str:
    """Fingerprint of an idempotent request: its route and its canonical JSON body."""
    canonical = _CANONICAL.encode(body)
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def over_limit(field: str, value: int, limit: int) -> HTTPException:
    """A 422 like a validation error, for limits that come from settings (also in the OpenAPI ``maximum``)."""
    msg = f"must be at most {limit} minor units, got {value}"
    return ProblemException(422, f"{field}: {msg}", [
        {"field": field, "loc": ["body", field], "msg": msg, "type": "less_than_equal"}])
