"""The spin route's lean path (casino.api.fastpath) answers exactly like FastAPI's own handler.

Every row sends one request twice to the same app: once as it is served (the
lean path tries first and hands anything unusual to FastAPI) and once with a
dependency override installed, which turns the lean path off so FastAPI's
handler answers alone. Status, body (apart from per-spin random fields) and
the WWW-Authenticate header must match.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import casino.api.fastpath as fastpath
from tests.casino.conftest import Casino

SPINS = "/v1/games/slots/spins"
TOKEN = "@TOKEN@"
KEY = "@KEY@"
JSON = "application/json"
GOOD = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": KEY, "Content-Type": JSON}

# (case, headers (None drops one), raw body)
CASES: list[tuple[str, dict[str, str | None], bytes]] = [
    ("well-formed", {}, b'{"bet": 1}'),
    ("lower-case scheme, charset", {"Authorization": f"bearer {TOKEN}", "Content-Type": f"{JSON}; charset=utf-8"},
     b'{"bet": 2}'),
    ("+json content type", {"Content-Type": "application/merge-patch+json"}, b'{"bet": 1}'),
    ("no content type", {"Content-Type": None}, b'{"bet": 1}'),
    ("text/plain", {"Content-Type": "text/plain"}, b'{"bet": 1}'),
    ("no Authorization", {"Authorization": None}, b'{"bet": 1}'),
    ("bare Bearer", {"Authorization": "Bearer"}, b'{"bet": 1}'),
    ("forged token", {"Authorization": "Bearer forged-token"}, b'{"bet": 1}'),
    ("Basic scheme", {"Authorization": "Basic dXNlcjpwYXNz"}, b'{"bet": 1}'),
    ("no Idempotency-Key", {"Idempotency-Key": None}, b'{"bet": 1}'),
    ("empty Idempotency-Key", {"Idempotency-Key": ""}, b'{"bet": 1}'),
    ("129-char Idempotency-Key", {"Idempotency-Key": "x" * 129}, b'{"bet": 1}'),
    ("Idempotency-Key with a space", {"Idempotency-Key": "a b"}, b'{"bet": 1}'),
    ("float bet", {}, b'{"bet": 1.0}'),
    ("string bet", {}, b'{"bet": "1"}'),
    ("boolean bet", {}, b'{"bet": true}'),
    ("zero bet", {}, b'{"bet": 0}'),
    ("huge bet", {}, b'{"bet": 1000000000000000000000}'),
    ("over max_bet", {}, b'{"bet": 100001}'),
    ("unknown field", {}, b'{"bet": 1, "x": 2}'),
    ("missing field", {}, b"{}"),
    ("list body", {}, b"[1]"),
    ("malformed JSON", {}, b'{"bet": 1'),
    ("empty body", {}, b""),
    ("not UTF-8", {}, b"\xff\xfe"),
    ("NaN", {}, b'{"bet": NaN}'),  # Python's json accepts it; the 422 must still render (it used to be a 500)
    ("-Infinity", {}, b'{"bet": -Infinity}'),
]
RANDOM_FIELDS = {"spin_id", "symbols", "multiplier", "win", "balance"}


def _headers(overrides: dict[str, str | None], token: str, key: str) -> dict[str, str]:
    merged = {**GOOD, **overrides}
    return {k: v.replace(TOKEN, token).replace(KEY, key) for k, v in merged.items() if v is not None}


def _comparable(r: Any) -> tuple[int, Any, str | None]:
    try:
        body = r.json()
    except json.JSONDecodeError:
        body = r.text
    if isinstance(body, dict) and r.status_code == 201:
        body = {k: (type(v).__name__ if k in RANDOM_FIELDS else v) for k, v in body.items()}
    return r.status_code, body, r.headers.get("www-authenticate")


@pytest.mark.parametrize(("case", "overrides", "raw"), CASES, ids=[c[0] for c in CASES])
async def test_lean_path_answers_like_fastapi(sqlite_casino: Casino, case: str, overrides: dict[str, str | None],
                                              raw: bytes) -> None:
    token = (await sqlite_casino.player(deposit=10**6))["Authorization"].removeprefix("Bearer ")
    headers = _headers(overrides, token, sqlite_casino.key())
    served = await sqlite_casino.client.post(SPINS, content=raw, headers=headers)
    sqlite_casino.app.dependency_overrides[_unused_dependency] = _unused_dependency  # turns the lean path off
    try:
        plain = await sqlite_casino.client.post(SPINS, content=raw,
                                                headers=_headers(overrides, token, sqlite_casino.key()))
    finally:
        sqlite_casino.app.dependency_overrides.clear()
    assert served.status_code < 500, (case, served.text)
    assert _comparable(served) == _comparable(plain), case


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_well_formed_spins_take_the_lean_path_and_replay(open_casino: Any, backend: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    casino: Casino = await open_casino(backend)
    taken: list[bool] = []
    real = fastpath._fast_arguments

    async def spy(request: Any, model: Any) -> Any:
        args = await real(request, model)
        taken.append(args is not None)
        return args

    monkeypatch.setattr(fastpath, "_fast_arguments", spy)
    h = {**(await casino.player(deposit=1000)), "Idempotency-Key": "spin-1"}
    first = await casino.client.post(SPINS, json={"bet": 10}, headers=h)
    again = await casino.client.post(SPINS, json={"bet": 10}, headers=h)
    other = await casino.client.post(SPINS, json={"bet": 11}, headers=h)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert taken == [True, True, True]
    assert await casino.balance(h) == first.json()["balance"] == 1000 - 10 + first.json()["win"]


def _unused_dependency() -> None:
    """Only its presence in ``dependency_overrides`` matters."""
