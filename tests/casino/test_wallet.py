"""Wallet: deposits, withdrawals, idempotency, isolation, history (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.casino.conftest import Casino


async def test_deposit_then_withdraw_moves_the_balance_and_the_ledger(casino: Casino) -> None:
    h = await casino.player()
    assert await casino.balance(h) == 0
    r = await casino.client.post("/v1/wallet/deposits", json={"amount": 2500}, headers={**h, "Idempotency-Key": "a"})
    assert r.status_code == 201
    assert r.json()["balance"] == 2500 and r.json()["type"] == "deposit" and r.json()["currency"] == "EUR"
    r = await casino.client.post("/v1/wallet/withdrawals", json={"amount": 1000}, headers={**h, "Idempotency-Key": "b"})
    assert r.status_code == 201 and r.json()["balance"] == 1500
    assert await casino.balance(h) == 1500
    r = await casino.client.get("/v1/wallet/transactions", headers=h)
    assert [(e["type"], e["amount"]) for e in r.json()] == [("withdrawal", -1000), ("deposit", 2500)]
    audit = await casino.state.ledger.audit()
    assert audit["sum_of_entries"] == 0 and audit["unbalanced_transactions"] == 0
    assert audit["sum_of_player_balances"] == audit["sum_of_player_entries"] == 1500


async def test_withdrawal_beyond_the_balance_is_409_and_changes_nothing(casino: Casino) -> None:
    h = await casino.player(deposit=500)
    r = await casino.client.post("/v1/wallet/withdrawals", json={"amount": 501}, headers={**h, "Idempotency-Key": "w"})
    assert r.status_code == 409
    assert "insufficient funds" in r.json()["detail"]
    assert await casino.balance(h) == 500
    # the refused key was not consumed: after a deposit the same key succeeds
    await casino.client.post("/v1/wallet/deposits", json={"amount": 1}, headers={**h, "Idempotency-Key": "d"})
    r = await casino.client.post("/v1/wallet/withdrawals", json={"amount": 501}, headers={**h, "Idempotency-Key": "w"})
    assert r.status_code == 201 and r.json()["balance"] == 0


async def test_same_key_same_body_replays_the_first_answer(casino: Casino) -> None:
    h = {**(await casino.player()), "Idempotency-Key": "same"}
    first = await casino.client.post("/v1/wallet/deposits", json={"amount": 700}, headers=h)
    second = await casino.client.post("/v1/wallet/deposits", json={"amount": 700}, headers=h)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await casino.balance(h) == 700


async def test_same_key_different_body_or_endpoint_is_422(casino: Casino) -> None:
    h = {**(await casino.player(deposit=1000)), "Idempotency-Key": "k"}
    assert (await casino.client.post("/v1/wallet/deposits", json={"amount": 5}, headers=h)).status_code == 201
    r = await casino.client.post("/v1/wallet/deposits", json={"amount": 6}, headers=h)
    assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"]
    r = await casino.client.post("/v1/wallet/withdrawals", json={"amount": 5}, headers=h)
    assert r.status_code == 422
    assert await casino.balance(h) == 1005


async def test_keys_are_per_player(casino: Casino) -> None:
    alice = await casino.player()
    bob = await casino.player()
    ra = await casino.client.post("/v1/wallet/deposits", json={"amount": 10}, headers={**alice, "Idempotency-Key": "x"})
    rb = await casino.client.post("/v1/wallet/deposits", json={"amount": 10}, headers={**bob, "Idempotency-Key": "x"})
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["transaction_id"] != rb.json()["transaction_id"]
    assert "Idempotent-Replayed" not in rb.headers


async def test_a_player_sees_only_their_own_wallet_and_history(casino: Casino) -> None:
    alice = await casino.player("alice", deposit=300)
    bob = await casino.player("bob")
    assert await casino.balance(bob) == 0
    r = await casino.client.get("/v1/wallet/transactions", headers=bob)
    assert r.json() == []
    r = await casino.client.get("/v1/players/alice", headers=bob)
    assert r.status_code == 403 and "username" in r.json()["detail"]
    assert (await casino.client.get("/v1/players/alice", headers=alice)).json()["username"] == "alice"


async def test_history_pages_with_before(casino: Casino) -> None:
    h = await casino.player()
    for i in range(5):
        await casino.client.post(
            "/v1/wallet/deposits", json={"amount": i + 1}, headers={**h, "Idempotency-Key": str(i)}
        )
    page1 = (await casino.client.get("/v1/wallet/transactions", params={"limit": 2}, headers=h)).json()
    page2 = (
        await casino.client.get("/v1/wallet/transactions", params={"limit": 2, "before": page1[-1]["id"]}, headers=h)
    ).json()
    assert [e["amount"] for e in page1 + page2] == [5, 4, 3, 2]


async def test_deposit_above_the_configured_maximum_is_422_naming_amount(casino: Casino) -> None:
    h = {**(await casino.player()), "Idempotency-Key": "big"}
    limit = casino.settings.max_amount
    r = await casino.client.post("/v1/wallet/deposits", json={"amount": limit + 1}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "amount"]
    assert (await casino.client.post("/v1/wallet/deposits", json={"amount": limit}, headers=h)).status_code == 201


async def test_expired_idempotency_keys_are_purged_and_then_act_as_new(casino: Casino) -> None:
    h = {**(await casino.player()), "Idempotency-Key": "old"}
    first = await casino.client.post("/v1/wallet/deposits", json={"amount": 10}, headers=h)
    assert await casino.state.ledger.purge_idempotency_keys(0) == 0  # nothing is that old
    assert await casino.state.ledger.purge_idempotency_keys(2**62) == 1
    again = await casino.client.post("/v1/wallet/deposits", json={"amount": 10}, headers=h)
    assert again.status_code == 201 and again.json()["transaction_id"] != first.json()["transaction_id"]
    assert await casino.balance(h) == 20
