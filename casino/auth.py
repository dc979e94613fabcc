"""Passwords, bearer tokens and the per-process session cache.

Used by ``casino.api.players`` (register, log in) and ``casino.api.deps``
(every authenticated request). Passwords are hashed with scrypt (hashlib,
parameters stored with the hash); bearer tokens are random and only their
SHA-256 is stored, so a database leak does not leak live tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32


def hash_password(password: str, n: int) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), slow on purpose; run it off the event loop."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_DKLEN, maxmem=256 * 1024 * 1024
    )
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a ``hash_password`` string."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=256 * 1024 * 1024
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


# A fixed dummy hash so an unknown username costs as much as a wrong password.
def dummy_hash(n: int) -> str:
    return hash_password(secrets.token_hex(8), n)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the player behind a valid bearer token."""

    player_id: int
    username: str
    token_hash: str
    expires_ms: int


class SessionCache:
    """Verified tokens for a short while, so a spin does not pay a session lookup each time.

    Entries live at most ``ttl`` seconds and never past the session's expiry.
    Also tracks when each token was last seen, for ``casino_active_sessions``.
    """

    def __init__(self, ttl: float, active_window: float = 300.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.active_window = active_window
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._seen: dict[str, float] = {}

    def get(self, token_hash: str, now: float | None = None) -> Principal | None:
        now = time.monotonic() if now is None else now
        hit = self._entries.get(token_hash)
        if hit is None:
            return None
        principal, until = hit
        if now >= until or principal.expires_ms <= time.time() * 1000:
            self._entries.pop(token_hash, None)
            return None
        return principal

    def put(self, principal: Principal, now: float | None = None) -> None:
        if self.ttl <= 0:
            return
        now = time.monotonic() if now is None else now
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[principal.token_hash] = (principal, now + self.ttl)

    def touch(self, token_hash: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._seen) >= self.max_entries:
            self.active(now)
        self._seen[token_hash] = now

    def active(self, now: float | None = None) -> int:
        """Distinct tokens seen on this replica within the active window (prunes the rest)."""
        now = time.monotonic() if now is None else now
        horizon = now - self.active_window
        stale = [k for k, seen in self._seen.items() if seen < horizon]
        for k in stale:
            del self._seen[k]
        return len(self._seen)
