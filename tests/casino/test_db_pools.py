"""The PostgreSQL connection budget: ``db_pool_size`` split between the movement pool and SQLAlchemy's."""

from __future__ import annotations

from typing import Any

import pytest

from casino.db import split_pool


@pytest.mark.parametrize(("size", "postgres", "expected"), [
    (10, True, (5, 5)), (20, True, (10, 10)), (3, True, (2, 1)), (2, True, (1, 1)), (1, True, (1, 1)),
    (10, False, (0, 10)), (1, False, (0, 1)),
])
def test_split_pool(size: int, postgres: bool, expected: tuple[int, int]) -> None:
    assert split_pool(size, postgres) == expected


@pytest.mark.postgres
async def test_movements_use_the_movement_pool_and_give_connections_back(open_casino: Any) -> None:
    casino = await open_casino("postgres", db_pool_size=4)
    db = casino.state.db
    pool = await db.movement_pool()
    assert pool.get_max_size() == 2 and db.pool_stats() == (0, 4)
    h = await casino.player(deposit=500)
    for i in range(5):
        r = await casino.client.post("/v1/games/slots/spins", json={"bet": 1},
                                     headers={**h, "Idempotency-Key": f"s{i}"})
        assert r.status_code == 201, r.text
    assert db.pool_stats() == (0, 4)
    audit = await casino.state.ledger.audit()
    assert audit["sum_of_entries"] == 0 and audit["negative_balances"] == 0
    assert audit["accounts_not_matching_entries"] == 0


@pytest.mark.postgres
async def test_a_starved_movement_pool_times_out_and_moves_no_money(open_casino: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from casino import ledger

    casino = await open_casino("postgres", db_pool_size=2)
    h = await casino.player(deposit=500)
    pool = await casino.state.db.movement_pool()
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    monkeypatch.setattr(ledger, "POOL_TIMEOUT", 0.2)
    try:
        with pytest.raises(TimeoutError):
            await casino.client.post("/v1/games/slots/spins", json={"bet": 1}, headers={**h, "Idempotency-Key": "t"})
    finally:
        for conn in held:
            await pool.release(conn)
    assert await casino.balance(h) == 500
    r = await casino.client.post("/v1/games/slots/spins", json={"bet": 1}, headers={**h, "Idempotency-Key": "t"})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers  # the timed-out key was never stored
