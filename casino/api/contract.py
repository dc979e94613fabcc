"""The casino's OpenAPI document, completed so that it is the whole contract (``app.openapi``).

Called once per app by ``casino.app.create_app``. FastAPI documents what each
route declares; this adds what every operation can answer and what only the
settings know:

* the error responses each operation can give, all as ``Problem``
  (``application/problem+json``, casino.api.problems): 400 and 422 where there
  is a body or parameters, 401 where a bearer token is needed, 403 on the
  admin API, 429 where a rate limit applies, 503 (admission control) on
  every route but /metrics, /healthz and /readyz, with the ``Retry-After`` and
  ``WWW-Authenticate`` headers they carry;
* the configured ``max_bet`` and ``max_amount`` as the ``maximum`` of the
  request fields they bound;
* OpenAPI links (created event -> its deletion, a tournament listed -> its
  entries and leaderboard, a registration -> the log-in), so that stateful
  clients and schemathesis reach real resources instead of stopping at 404.

The one rule across fields that JSON Schema cannot say (an event's ``end >
start``) is in the descriptions and in the operation's ``x-pitboss-rules``.
"""

from __future__ import annotations

from typing import Any

from casino.api.problems import MEDIA_TYPE, REF, Problem
from casino.config import CasinoSettings

OPS_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
RATE_LIMITED = frozenset({("/v1/players", "post"), ("/v1/sessions", "post")})
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                               "schema": {"type": "integer", "minimum": 1}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "the scheme to use: Bearer", "schema": {"type": "string"}}}
DESCRIPTIONS = {
    400: "the body is not JSON (Problem)",
    401: "missing, unknown or expired bearer token (Problem)",
    403: "the token may not do this (Problem)",
    422: "a field breaks the schema or a rule; detail and errors name it (Problem)",
    429: "too many attempts for this username or address; retry after Retry-After seconds (Problem)",
    503: "over capacity (admission control) or a backend is down; retry after Retry-After seconds (Problem)",
}
# (from path, method, status) -> links of that response; parameters use OpenAPI runtime expressions.
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, Any]]]] = {
    ("/v1/admin/events", "post", "201"): {
        "DeleteEvent": ("/v1/admin/events/{event_id}", "delete", {"parameters": {"event_id": "$response.body#/id"}}),
    },
    ("/v1/tournaments", "get", "200"): {
        "EnterFirstTournament": ("/v1/tournaments/{tournament_id}/entries", "post",
                                 {"parameters": {"tournament_id": "$response.body#/0/id"}}),
        "FirstTournamentLeaderboard": ("/v1/tournaments/{tournament_id}/leaderboard", "get",
                                       {"parameters": {"tournament_id": "$response.body#/0/id"}}),
    },
    ("/v1/tournaments/{tournament_id}/entries", "post", "201"): {
        "Leaderboard": ("/v1/tournaments/{tournament_id}/leaderboard", "get",
                        {"parameters": {"tournament_id": "$request.path.tournament_id"}}),
    },
    ("/v1/players", "post", "201"): {
        "LogIn": ("/v1/sessions", "post", {"requestBody": "$request.body"}),
    },
}


def _problem(status: int, description: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description or DESCRIPTIONS.get(status, "error (Problem)"),
                                "content": {MEDIA_TYPE: {"schema": {"$ref": REF}}}}
    if status in (429, 503):
        response["headers"] = dict(RETRY_AFTER)
    if status == 401:
        response["headers"] = dict(WWW_AUTHENTICATE)
    return response


def _errors_of(path: str, method: str, op: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer besides those its route declares."""
    statuses: set[int] = set()
    if "requestBody" in op:
        statuses |= {400, 422}
    if op.get("parameters"):
        statuses.add(422)
    if op.get("security"):
        statuses.add(401)
    if path.startswith("/v1/admin"):
        statuses.add(403)
    if (path, method) in RATE_LIMITED:
        statuses.add(429)
    if path not in OPS_PATHS or path == "/readyz":
        statuses.add(503)
    return statuses


def document(schema: dict[str, Any], settings: CasinoSettings) -> dict[str, Any]:
    """Complete FastAPI's OpenAPI ``schema`` in place (and return it)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    operation_ids = {(path, method): op.get("operationId") for path, item in schema.get("paths", {}).items()
                     for method, op in item.items()}
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            for code, response in list(responses.items()):
                if code.isdigit() and int(code) >= 400:
                    responses[code] = _problem(int(code), response.get("description"))
            for status in sorted(_errors_of(path, method, op)):
                responses.setdefault(str(status), _problem(status))
                if status == 503 and path == "/readyz":
                    responses["503"]["description"] = "the database does not answer (Problem)"
            for code, response in responses.items():
                links = LINKS.get((path, method, code))
                if links:
                    response["links"] = {name: {"operationId": operation_ids[(target, verb)], **spec}
                                         for name, (target, verb, spec) in links.items()}
    for model, field, limit in (("SpinRequest", "bet", settings.max_bet),
                                ("AmountRequest", "amount", settings.max_amount)):
        prop = components.get(model, {}).get("properties", {}).get(field)
        if prop is not None:
            prop["maximum"] = limit
            prop["description"] = f"integer minor units (cents), 1 to {limit} (setting max_{field})"
    return schema
