"""/metrics (the metrics contract), /healthz, /readyz and admission control."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from casino.config import CasinoSettings
from casino.db import Database
from tests.casino.conftest import Casino

CONTRACT = {
    # name: (type, labels)
    "casino_http_requests": ("counter", {"route", "method", "status"}),
    "casino_http_request_duration_seconds": ("histogram", {"route", "method"}),
    "casino_http_requests_in_flight": ("gauge", set()),
    "casino_admission_rejections": ("counter", {"route"}),
    "casino_bets": ("counter", {"game"}),
    "casino_bet_amount_minor": ("counter", {"game"}),
    "casino_win_amount_minor": ("counter", {"game"}),
    "casino_wallet_transactions": ("counter", {"type", "outcome"}),
    "casino_active_sessions": ("gauge", set()),
    "casino_db_pool_in_use": ("gauge", set()),
    "casino_db_pool_size": ("gauge", set()),
    "casino_admission_capacity": ("gauge", set()),
}


async def scrape(casino: Casino) -> dict[str, Any]:
    r = await casino.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def sample(families: dict[str, Any], name: str, suffix: str = "", **labels: str) -> float:
    fam = families[name]
    return sum(s.value for s in fam.samples
               if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_metrics_follow_the_contract(casino: Casino) -> None:
    h = await casino.player(deposit=1000)
    for i in range(3):
        await casino.client.post("/v1/games/slots/spins", json={"bet": 10}, headers={**h, "Idempotency-Key": f"s{i}"})
    await casino.client.post("/v1/wallet/withdrawals", json={"amount": 10**6}, headers={**h, "Idempotency-Key": "w"})
    await casino.client.get("/v1/tournaments/12345/leaderboard")
    await casino.client.get("/no/such/path")
    fams = await scrape(casino)
    for name, (kind, labels) in CONTRACT.items():
        assert name in fams, name
        assert fams[name].type == kind, name
        for s in fams[name].samples:
            if s.name.endswith("_bucket"):
                assert set(s.labels) == labels | {"le"}
            else:
                assert set(s.labels) == labels, (name, s.labels)
    assert sample(fams, "casino_http_requests", "_total", route="/v1/games/slots/spins", method="POST",
                  status="201") == 3
    assert sample(fams, "casino_http_requests", "_total", route="/v1/tournaments/{tournament_id}/leaderboard",
                  status="404") == 1
    assert sample(fams, "casino_http_requests", "_total", route="<unmatched>", status="404") == 1
    assert sample(fams, "casino_bets", "_total", game="slots") == 3
    assert sample(fams, "casino_bet_amount_minor", "_total", game="slots") == 30
    assert sample(fams, "casino_wallet_transactions", "_total", type="deposit", outcome="ok") == 1
    assert sample(fams, "casino_wallet_transactions", "_total", type="withdrawal", outcome="insufficient_funds") == 1
    assert sample(fams, "casino_wallet_transactions", "_total", type="bet", outcome="ok") == 3
    assert sample(fams, "casino_active_sessions") == 1
    assert sample(fams, "casino_db_pool_size") == casino.settings.db_pool_size
    assert sample(fams, "casino_admission_capacity") == casino.settings.max_in_flight
    buckets = {s.labels["le"] for s in fams["casino_http_request_duration_seconds"].samples
               if s.name.endswith("_bucket")}
    assert {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5"} <= buckets
    assert sample(fams, "casino_http_request_duration_seconds", "_count", route="/v1/games/slots/spins") == 3


async def test_admission_control_rejects_beyond_the_cap_with_retry_after(open_casino: Any) -> None:
    """Registration hashes with real scrypt cost, so these requests stay in flight while the others arrive."""
    casino = await open_casino("sqlite", max_in_flight=2, scrypt_n=2**14, retry_after_seconds=3)
    replies = await asyncio.gather(*(casino.client.post("/v1/players", json={"username": f"user{i}",
                                                                             "password": "long enough"})
                                     for i in range(8)))
    statuses = sorted(r.status_code for r in replies)
    rejected = [r for r in replies if r.status_code == 503]
    assert statuses.count(201) >= 1 and rejected, statuses
    assert statuses.count(201) + len(rejected) == 8
    assert all(r.headers["Retry-After"] == "3" and "over capacity" in r.json()["detail"] for r in rejected)
    fams = await scrape(casino)  # /metrics bypasses the cap
    assert sample(fams, "casino_admission_rejections", "_total", route="/v1/players") == len(rejected)
    assert sample(fams, "casino_http_requests", "_total", route="/v1/players", status="503") == len(rejected)
    assert sample(fams, "casino_admission_capacity") == 2
    assert sample(fams, "casino_http_requests_in_flight") == 1  # the scrape itself


async def test_healthz_and_readyz(casino: Casino) -> None:
    assert (await casino.client.get("/healthz")).json() == {"status": "ok"}
    r = await casino.client.get("/readyz")
    assert r.status_code == 200 and r.json()["database"] == "ok"


async def test_readyz_is_503_when_the_database_is_unreachable(sqlite_casino: Casino) -> None:
    state = sqlite_casino.state
    good = state.db
    state.db = Database(CasinoSettings(database_url="postgresql://postgres@127.0.0.1:9/none"))
    try:
        r = await sqlite_casino.client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == 503 and r.json()["detail"].startswith("database: ")
    finally:
        await state.db.dispose()
        state.db = good
