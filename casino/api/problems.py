"""One error shape for every error the casino answers: problem details (RFC 9457), documented everywhere.

Installed by ``casino.app.create_app``: ``install`` registers the exception
handlers (FastAPI's validation errors, every ``HTTPException``, a body that
cannot be parsed) so that each 4xx and 5xx body is a ``Problem`` with
``application/problem+json``; ``document`` writes the same responses into
every operation of the OpenAPI document, so a client (or schemathesis) can
rely on the contract. Raised by the routers through ``problem``; the
admission and rate-limit answers are built with ``problem_body``.

``detail`` is always one string that names the field; validation errors also
carry ``errors``, one item per failing field (``loc`` as FastAPI names it).
Unparsable JSON is a 400 (malformed syntax); a body that parses but breaks
the schema is a 422.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"
REF = "#/components/schemas/Problem"
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class FieldError(BaseModel):
    """One failing field of a validation error."""

    field: str = Field(description="the field, e.g. bet, Idempotency-Key, from")
    loc: list[str | int] = Field(description="where FastAPI found it: body, query, header or path, then the path")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every 4xx and 5xx answer."""

    type: str = Field("about:blank", description="a URI naming the problem type; about:blank means see status")
    title: str = Field(description="the status phrase, e.g. Unprocessable Content")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong, naming the field, e.g. 'bet: must be at most 100000'")
    errors: list[FieldError] = Field(default_factory=list, description="on validation errors: every failing field")


class ProblemException(HTTPException):
    """An HTTPException that also carries field errors (``errors`` of the Problem)."""

    def __init__(self, status_code: int, detail: str, errors: Sequence[dict[str, Any]] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.errors = list(errors)


def problem(status: int, detail: str, *, field: str | None = None, loc: Sequence[str | int] = (),
            headers: dict[str, str] | None = None) -> ProblemException:
    """The exception a router raises; with ``field``, one field error is attached (and named in ``detail``)."""
    errors = [{"field": field, "loc": list(loc) or ["body", field], "msg": detail, "type": "value_error"}] if field \
        else []
    text = detail if field is None or detail.startswith(f"{field}:") else f"{field}: {detail}"
    return ProblemException(status, text, errors, headers)


def problem_body(status: int, detail: str, errors: Sequence[dict[str, Any]] = ()) -> bytes:
    """The JSON bytes of a Problem (also used by the ASGI middlewares, which run outside FastAPI)."""
    body: dict[str, Any] = {"type": "about:blank", "title": _title(status), "status": status, "detail": detail}
    if errors:
        body["errors"] = list(errors)
    return _ENCODER.encode(body).encode("utf-8")


def problem_response(status: int, detail: str, errors: Sequence[dict[str, Any]] = (),
                     headers: dict[str, str] | None = None) -> Response:
    return Response(problem_body(status, detail, errors), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field(loc: Sequence[Any]) -> str:
    """The field a FastAPI location names: ``("body", "bet") -> "bet"``, ``("body",) -> "body"``."""
    parts = [str(p) for p in loc[1:] if not isinstance(p, int)] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error")
        msg = f"expected JSON: {reason}" if reason else "expected JSON"
    return msg


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's error list as ``FieldError`` dicts (no echo of the input: it may be huge, NaN or a secret)."""
    out = []
    for error in errors:
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        out.append({"field": _field(loc), "loc": loc, "msg": _message(error), "type": str(error.get("type", ""))})
    return out


async def validation_error(_request: Request, exc: Exception) -> Response:
    """422 naming every failing field; 400 when the body is not JSON at all."""
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    status = 400 if any(e["type"] == "json_invalid" for e in errors) else 422
    detail = "; ".join(f"{e['field']}: {e['msg']}" for e in errors[:5]) or "request: invalid"
    return problem_response(status, detail, errors)


async def http_error(_request: Request, exc: Exception) -> Response:
    """Every HTTPException (the routers', Starlette's 404 and 405, FastAPI's unparsable body) as a Problem."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    errors = getattr(exc, "errors", [])
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        detail = "body: could not be read as UTF-8 JSON"
    if not isinstance(detail, str):
        detail = json.dumps(detail, default=str)
    return problem_response(exc.status_code, detail, errors, getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    """Register the handlers that make every error a Problem."""
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
