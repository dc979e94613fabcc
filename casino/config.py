"""Casino API settings: one pydantic model, validated on load, env-overridable.

Built by ``cli.casino_cmd`` (flags and ``PITBOSS_CASINO_*`` environment
variables) and by tests; consumed by ``casino.app.create_app``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ENV_PREFIX = "PITBOSS_CASINO_"
DEFAULT_DATABASE_URL = "sqlite:///var/casino.db"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def normalize_database_url(url: str) -> str:
    """Map user-facing URLs to the async SQLAlchemy drivers (asyncpg, aiosqlite)."""
    for prefix in ("postgresql+asyncpg://", "sqlite+aiosqlite://"):
        if url.startswith(prefix):
            return url
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    raise ValueError(f"database_url: expected postgresql://... or sqlite:///path, got {url!r}")


class CasinoSettings(BaseModel):
    """Everything the casino API reads at start; every field validated with its name."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    database_url: str = Field(default=DEFAULT_DATABASE_URL, description="postgresql://... or sqlite:///path")
    db_schema: str | None = Field(default=None, description="PostgreSQL schema (search_path); created when missing")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: str | None = Field(default=None, description="redis://host:port/db; in-process leaderboards when unset")
    leaderboard_prefix: str = Field(default="pitboss:", min_length=1, max_length=64)
    admin_token: SecretStr | None = Field(
        default=None, description="calendar admin bearer token; admin API off if unset"
    )
    max_in_flight: int = Field(
        default=64, ge=1, le=100_000, description="per-replica admission cap on in-flight requests"
    )
    retry_after_seconds: int = Field(default=1, ge=1, le=3600)
    session_ttl_seconds: int = Field(default=12 * 3600, ge=1, le=90 * 86400)
    session_cache_seconds: float = Field(
        default=30.0, ge=0, le=3600, description="per-process cache of verified tokens"
    )
    scrypt_n: int = Field(default=2**14, ge=2, le=2**20, description="scrypt cost (power of two)")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    max_amount: int = Field(
        default=100_000_000, ge=1, le=2**53, description="largest deposit/withdrawal in minor units"
    )
    max_bet: int = Field(default=100_000, ge=1, le=2**53, description="largest slots bet in minor units")
    idempotency_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 365, description="how long a key replays")
    tournament_refresh_seconds: float = Field(default=2.0, ge=0, le=3600)

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("db_schema")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEMA_RE.match(value):
            raise ValueError("expected a lowercase SQL identifier like pitboss_casino")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected redis://host:port/db, got {value!r}")
        return value

    @field_validator("scrypt_n")
    @classmethod
    def _pow2(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"expected a power of two, got {value}")
        return value

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> CasinoSettings:
        """Defaults, then ``PITBOSS_CASINO_<FIELD>`` variables, then explicit overrides (flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def settings_error(exc: ValidationError) -> str:
    """One line naming the first bad field, for the CLI."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return f"{loc}: {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}"
