"""The OpenAPI document is the whole contract: one error shape, documented on every operation (fast checks).

The slow, complete check is tests/casino/test_fuzz.py (schemathesis, all
checks, against a real server); these name the rules one by one.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from tests.casino.conftest import Casino

PROBLEM = {"$ref": "#/components/schemas/Problem"}
OPS = {"/metrics", "/healthz"}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]


async def test_every_error_response_is_a_documented_problem(sqlite_casino: Casino) -> None:
    doc = (await sqlite_casino.client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    problem = doc["components"]["schemas"]["Problem"]
    assert problem["properties"]["detail"]["type"] == "string"
    assert set(problem["required"]) == {"title", "status", "detail"}
    for path, method, op in _operations(doc):
        responses = op["responses"]
        for code, response in responses.items():
            if int(code) >= 400:
                assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (path, code)
        if "requestBody" in op:
            assert {"400", "422"} <= set(responses), (method, path)
        if op.get("parameters"):
            assert "422" in responses, (method, path)
        if op.get("security"):
            assert "WWW-Authenticate" in responses["401"]["headers"], (method, path)
        if path not in OPS:
            assert "Retry-After" in responses["503"]["headers"], (method, path)


async def test_limits_from_settings_and_links_are_in_the_document(open_casino: Any) -> None:
    casino = await open_casino("sqlite", max_bet=777, max_amount=5000)
    doc = (await casino.client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert schemas["SpinRequest"]["properties"]["bet"]["maximum"] == 777
    assert schemas["AmountRequest"]["properties"]["amount"]["maximum"] == 5000
    created = doc["paths"]["/v1/admin/events"]["post"]["responses"]["201"]["links"]
    assert created["DeleteEvent"]["parameters"] == {"event_id": "$response.body#/id"}
    ids = {op["operationId"] for _path, _method, op in _operations(doc)}
    for _path, _method, op in _operations(doc):
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in ids
    assert doc["paths"]["/v1/admin/events"]["post"]["x-pitboss-rules"] == ["end > start"]


async def test_error_bodies_match_the_problem_schema(sqlite_casino: Casino) -> None:
    """One of each error source: validation, unparsable JSON, routers, Starlette's 404/405, settings limits."""
    doc = (await sqlite_casino.client.get("/openapi.json")).json()
    schema = {"$ref": "#/components/schemas/Problem", "components": doc["components"]}
    c = sqlite_casino.client
    h = {**(await sqlite_casino.player()), "Idempotency-Key": "k"}
    answers = [
        await c.post("/v1/wallet/deposits", json={"amount": "1"}, headers=h),
        await c.post("/v1/wallet/deposits", content=b"{", headers={**h, "Content-Type": "application/json"}),
        await c.post("/v1/wallet/withdrawals", json={"amount": 5}, headers=h),
        await c.post("/v1/wallet/deposits", json={"amount": 10**9}, headers=h),
        await c.get("/v1/wallet"),
        await c.get("/v1/nowhere"),
        await c.patch("/v1/wallet"),
        await c.get("/v1/tournaments/12345/leaderboard"),
    ]
    assert [r.status_code for r in answers] == [422, 400, 409, 422, 401, 404, 405, 404]
    for r in answers:
        assert r.headers["content-type"] == "application/problem+json", r.text
        body = r.json()
        jsonschema.validate(body, schema)
        assert isinstance(body["detail"], str) and body["status"] == r.status_code
    assert answers[3].json()["errors"][0]["field"] == "amount"
