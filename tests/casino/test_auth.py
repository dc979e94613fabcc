"""Password hashing and the session cache (pure parts of casino.auth)."""

from __future__ import annotations

import time

import pytest

from casino.auth import Principal, SessionCache, hash_password, token_digest, verify_password


def test_scrypt_round_trip_with_the_production_cost() -> None:
    stored = hash_password("correct horse", 2**14)
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsf", stored)
    assert hash_password("correct horse", 2**14) != stored  # salted


@pytest.mark.parametrize("stored", ["", "md5$x", "scrypt$a$b$c$d$e", "scrypt$16384$8$1$!!!$???"])
def test_malformed_stored_hashes_never_verify(stored: str) -> None:
    assert verify_password("anything", stored) is False


def test_tokens_are_stored_as_digests() -> None:
    assert token_digest("abc") == token_digest("abc") != token_digest("abd")
    assert len(token_digest("abc")) == 64


def test_session_cache_expires_by_ttl_and_by_session_expiry() -> None:
    cache = SessionCache(ttl=10, active_window=60)
    far = int(time.time() * 1000) + 3_600_000
    p = Principal(1, "alice", "h1", far)
    cache.put(p, now=100.0)
    assert cache.get("h1", now=105.0) == p
    assert cache.get("h1", now=111.0) is None  # cache TTL
    cache.put(Principal(2, "bob", "h2", int(time.time() * 1000) - 1), now=100.0)
    assert cache.get("h2", now=100.5) is None  # the session itself expired
    assert SessionCache(ttl=0).get("h1") is None


def test_active_sessions_count_recent_tokens_only() -> None:
    cache = SessionCache(ttl=10, active_window=60)
    cache.touch("a", now=0.0)
    cache.touch("b", now=50.0)
    cache.touch("a", now=55.0)
    assert cache.active(now=70.0) == 2
    assert cache.active(now=112.0) == 1  # the window starts at 52: "b" (seen at 50) dropped, "a" (55) kept
