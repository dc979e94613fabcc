"""A FastAPI route class with a lean path for well-formed requests (used by the spin route).

FastAPI resolves a spin's dependencies (state, bearer scheme, session, header,
body) through its generic machinery, which costs more CPU than the spin
itself. ``FastPathRoute`` first tries a hand-written check of exactly the same
rules for the common case: a JSON body of at most ``MAX_FAST_BODY`` bytes, a
bearer token, a well-formed header. Whenever anything is unusual (a header
missing or malformed, a body that does not validate, dependency overrides
installed) it hands the very same request to FastAPI's own handler, so every
error, and its message naming the field, is exactly FastAPI's. A token that
does not authenticate gets at once the 401 of ``casino.api.deps.current_player``
(no second session lookup). The OpenAPI document comes from the route as
declared. tests/casino/test_fastpath.py checks both paths answer alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from casino.api.deps import INVALID_TOKEN, CasinoState, authenticate, unauthorized
from casino.auth import Principal

MAX_FAST_BODY = 4096
# Same rule as the Idempotency-Key ``Header`` declaration in casino.api.wallet (1-128 printable ASCII).
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")
WANTED = frozenset({b"content-type", b"content-length", b"authorization", b"idempotency-key"})
FastHandler = Callable[[CasinoState, Principal, str, Any], Awaitable[Response]]


def fast_path(model: type[BaseModel], handler: FastHandler) -> Callable[[Any], Any]:
    """Mark an endpoint (under ``@router.post``) as served by ``handler(st, player, key, body)`` when well-formed."""

    def mark(endpoint: Any) -> Any:
        endpoint.fast_path = (model, handler)
        return endpoint

    return mark


class FastPathRoute(APIRoute):
    """An APIRoute whose endpoint is marked with ``fast_path``; other routes are untouched."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        slow = super().get_route_handler()
        spec: tuple[type[BaseModel], FastHandler] | None = getattr(self.endpoint, "fast_path", None)
        if spec is None:
            return slow
        model, fast = spec

        async def handler(request: Request) -> Response:
            args = await _fast_arguments(request, model)
            if args is None:
                return await slow(request)
            return await fast(*args)

        return handler


async def _fast_arguments(request: Request, model: type[BaseModel]) -> tuple[CasinoState, Principal, str, Any] | None:
    """(state, player, idempotency key, body) when the request is well-formed; None hands it to FastAPI."""
    if request.app.dependency_overrides:
        return None
    headers: dict[bytes, bytes] = {}
    for name, value in request.scope["headers"]:  # one pass; the first of repeated headers wins, as in Starlette
        if name in WANTED and name not in headers:
            headers[name] = value
    content_type = headers.get(b"content-type", b"")
    if content_type != b"application/json" and not content_type.startswith(b"application/json;"):
        return None
    length = headers.get(b"content-length", b"")
    if not length.isdigit() or not 0 < int(length) <= MAX_FAST_BODY:
        return None
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    token = token.strip()
    raw_key = headers.get(b"idempotency-key")
    key = None if raw_key is None else raw_key.decode("latin-1")
    if scheme.lower() != "bearer" or not token or key is None or IDEMPOTENCY_KEY.fullmatch(key) is None:
        return None
    try:
        body = model.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError):  # malformed JSON or an invalid field: FastAPI's 422 says which
        return None
    st: CasinoState = request.app.state.casino
    player = await authenticate(st, token)
    if player is None:  # the 401 FastAPI's path would give, without looking the token up a second time
        raise unauthorized(INVALID_TOKEN)
    return st, player, key, body
