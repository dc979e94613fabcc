"""The money invariant under concurrency: many players spinning, depositing, withdrawing at once.

Bounded: 12 players x 25 operations, at most 24 in flight, on SQLite and on
real PostgreSQL. Every operation is sent twice with the same key (some
concurrently with the first), and every replay must equal the first answer.
"""

from __future__ import annotations

import asyncio
import random

from tests.casino.conftest import Casino

PLAYERS = 12
OPS = 25


async def test_sum_of_ledger_equals_sum_of_balances_and_replays_match(casino: Casino) -> None:
    players = [await casino.player(deposit=2_000) for _ in range(PLAYERS)]
    gate = asyncio.Semaphore(24)
    rng = random.Random(7)
    plan = []
    for p, headers in enumerate(players):
        for i in range(OPS):
            kind = rng.choice(["spin", "spin", "spin", "deposit", "withdrawal"])
            amount = rng.choice([1, 50, 100, 400, 900])
            plan.append((headers, f"op-{p}-{i}", kind, amount))
    rng.shuffle(plan)
    path = {"spin": "/v1/games/slots/spins", "deposit": "/v1/wallet/deposits", "withdrawal": "/v1/wallet/withdrawals"}

    async def send(headers: dict[str, str], key: str, kind: str, amount: int) -> tuple[int, dict[str, object]]:
        body = {"bet": amount} if kind == "spin" else {"amount": amount}
        async with gate:
            r = await casino.client.post(path[kind], json=body, headers={**headers, "Idempotency-Key": key})
        assert r.status_code in (201, 409), r.text
        return r.status_code, r.json()

    async def op(headers: dict[str, str], key: str, kind: str, amount: int) -> None:
        twin = asyncio.create_task(send(headers, key, kind, amount))  # a concurrent retry of the same request
        first = await send(headers, key, kind, amount)
        second = await twin
        later = await send(headers, key, kind, amount)
        answers = [a for a in (first, second, later) if a[0] == 201]
        assert all(a == answers[0] for a in answers), answers  # every replay returns the first answer

    await asyncio.gather(*(op(*step) for step in plan))

    audit = await casino.state.ledger.audit()
    assert audit["sum_of_entries"] == 0
    assert audit["sum_of_player_balances"] == audit["sum_of_player_entries"]
    assert audit["negative_balances"] == 0
    assert audit["unbalanced_transactions"] == 0
    assert audit["accounts_not_matching_entries"] == 0
    balances = [await casino.balance(h) for h in players]
    assert sum(balances) == audit["sum_of_player_balances"] and min(balances) >= 0
