"""Slots spins through the API: money moves once, replays, funds checks (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from casino.games import slots
from tests.casino.conftest import Casino


async def test_a_spin_debits_the_bet_and_credits_the_win_in_one_transaction(casino: Casino) -> None:
    h = await casino.player(deposit=10_000)
    balance = 10_000
    for i in range(30):
        r = await casino.client.post(
            "/v1/games/slots/spins", json={"bet": 100}, headers={**h, "Idempotency-Key": f"s{i}"}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert len(body["symbols"]) == 3 and set(body["symbols"]) <= set(slots.SYMBOLS)
        assert body["multiplier"] == slots.multiplier(tuple(body["symbols"]))
        assert body["win"] == 100 * body["multiplier"]
        balance += body["win"] - 100
        assert body["balance"] == balance
        entries = [
            e
            for e in (await casino.client.get("/v1/wallet/transactions", headers=h)).json()
            if e["transaction_id"] == body["spin_id"]
        ]
        expected = {("bet", -100)} | ({("win", body["win"])} if body["win"] else set())
        assert {(e["type"], e["amount"]) for e in entries} == expected
    assert await casino.balance(h) == balance
    audit = await casino.state.ledger.audit()
    assert audit["sum_of_entries"] == 0 and audit["unbalanced_transactions"] == 0
    assert audit["accounts_not_matching_entries"] == 0


async def test_a_replayed_spin_returns_the_same_symbols_and_moves_no_money(casino: Casino) -> None:
    h = {**(await casino.player(deposit=1000)), "Idempotency-Key": "spin-1"}
    first = await casino.client.post("/v1/games/slots/spins", json={"bet": 50}, headers=h)
    after_first = await casino.balance(h)
    again = [await casino.client.post("/v1/games/slots/spins", json={"bet": 50}, headers=h) for _ in range(3)]
    assert all(r.status_code == 201 and r.json() == first.json() for r in again)
    assert await casino.balance(h) == after_first
    r = await casino.client.post("/v1/games/slots/spins", json={"bet": 51}, headers=h)
    assert r.status_code == 422


async def test_a_bet_larger_than_the_balance_is_409_even_if_it_would_win(casino: Casino) -> None:
    h = await casino.player(deposit=99)
    r = await casino.client.post("/v1/games/slots/spins", json={"bet": 100}, headers={**h, "Idempotency-Key": "x"})
    assert r.status_code == 409 and "bet 100" in r.json()["detail"]
    assert await casino.balance(h) == 99


async def test_concurrent_spins_of_one_player_serialize(casino: Casino) -> None:
    """40 concurrent spins on a balance that covers 10 bets: the balance never dips below zero."""
    h = await casino.player(deposit=1000)

    async def one(i: int) -> tuple[int, int]:
        r = await casino.client.post(
            "/v1/games/slots/spins", json={"bet": 100}, headers={**h, "Idempotency-Key": f"c{i}"}
        )
        assert r.status_code in (201, 409), r.text
        return r.status_code, (r.json()["win"] if r.status_code == 201 else 0)

    results = await asyncio.gather(*(one(i) for i in range(40)))
    ok = [win for status, win in results if status == 201]
    assert len(ok) >= 10  # at least the ten the deposit covers
    assert await casino.balance(h) == 1000 - 100 * len(ok) + sum(ok)
    audit = await casino.state.ledger.audit()
    assert audit["negative_balances"] == 0 and audit["accounts_not_matching_entries"] == 0


async def test_bet_above_max_bet_is_422_naming_bet(casino: Casino) -> None:
    h = {**(await casino.player(deposit=10_000_000)), "Idempotency-Key": "big"}
    r = await casino.client.post("/v1/games/slots/spins", json={"bet": casino.settings.max_bet + 1}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "bet"]
