"""Casino API settings: one pydantic model, validated on load, env-overridable.

Built by ``cli.casino_cmd`` (flags and ``PITBOSS_CASINO_*`` environment
variables) and by tests; consumed by ``casino.app.create_app``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from limits import parse as parse_rate
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

ENV_PREFIX = "PITBOSS_CASINO_"
DEFAULT_DATABASE_URL = "sqlite:///var/casino.db"
MIN_ADMIN_TOKEN = 32
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PASSWORD_RE = re.compile(r"(?P<head>://[^:/@]*:)[^@/]*@")


def _password_span(url: str) -> tuple[int, int] | None:
    """Where the password of ``scheme://user:password@host/...`` is (up to the last @), if there is one."""
    begin = url.find("://")
    if begin < 0:
        return None
    at = url.rfind("@")
    colon = url.find(":", begin + 3)
    if at < 0 or colon < 0 or colon > at:
        return None
    return colon + 1, at


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``: what every message about a URL shows."""
    span = _password_span(url)
    return url if span is None else url[: span[0]] + "***" + url[span[1] :]


def normalize_database_url(url: str, field: str = "database_url") -> str:
    """Map user-facing URLs to the async SQLAlchemy drivers (asyncpg, aiosqlite); check that they parse.

    Messages show the URL with its password replaced by ``***``, never the password.
    """
    from sqlalchemy.engine import make_url

    normalized: str | None = None
    for prefix in ("postgresql+asyncpg://", "sqlite+aiosqlite://"):
        if url.startswith(prefix):
            normalized = url
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if normalized is None and url.startswith(plain):
            normalized = driver + url[len(plain) :]
    if normalized is None:
        raise ValueError(f"{field}: expected postgresql://... or sqlite:///path, got {redact_url(url)!r}")
    try:
        port = make_url(normalized).port  # parsed lazily: a bad port must fail here, not at start-up
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{field}: expected a port between 1 and 65535 in {redact_url(url)!r}")
    return normalized


def split_urls(value: Any) -> list[str]:
    """A list of URLs from a list or a comma-separated string (one environment variable for several)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)


class CasinoSettings(BaseModel):
    """Everything the casino API reads at start; every field validated with its name."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, hide_input_in_errors=True)

    database_url: str = Field(default=DEFAULT_DATABASE_URL, description="postgresql://... or sqlite:///path",
                              repr=False)
    read_database_url: list[str] = Field(
        default_factory=list, repr=False,
        description="PostgreSQL read replicas (comma-separated in the environment); reads go to the primary if unset")
    replica_max_lag_seconds: float = Field(default=5.0, ge=0, le=3600,
                                           description="a replica further behind serves no reads")
    replica_check_seconds: float = Field(default=1.0, gt=0, le=60, description="how often replica lag is measured")
    read_pool_size: int = Field(default=4, ge=1, le=200, description="connections per read replica and worker")
    db_schema: str | None = Field(default=None, description="PostgreSQL schema (search_path); created when missing")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: str | None = Field(default=None, description="redis://host:port/db; in-process leaderboards when unset")
    leaderboard_prefix: str = Field(default="pitboss:", min_length=1, max_length=64)
    admin_token: SecretStr | None = Field(
        default=None,
        description=f"calendar admin bearer token (>= {MIN_ADMIN_TOKEN} characters); admin API off if unset"
    )
    admin_token_file: Path | None = Field(default=None, description="a file holding the admin token (e.g. a Secret)")
    auth_rate_limit_username: str = Field(default="10/minute",
                                          description="log-in and registration attempts per username")
    auth_rate_limit_address: str = Field(default="60/minute",
                                         description="log-in and registration attempts per client address")
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

    @field_validator("read_database_url", mode="before")
    @classmethod
    def _read_urls(cls, value: Any) -> list[str]:
        urls = [normalize_database_url(u, "read_database_url") for u in split_urls(value)]
        if any(not u.startswith("postgresql") for u in urls):
            raise ValueError("read_database_url: read replicas are PostgreSQL standbys (postgresql://...)")
        return urls

    @field_validator("auth_rate_limit_username", "auth_rate_limit_address")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_rate(value)
        except ValueError:
            raise ValueError(f"expected a rate like 10/minute or 100 per hour, got {value!r}") from None
        return value

    @field_validator("admin_token")
    @classmethod
    def _token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_TOKEN:
            raise ValueError(f"must be at least {MIN_ADMIN_TOKEN} characters, got "
                             f"{len(value.get_secret_value())} (e.g. python3 -c "
                             "'import secrets; print(secrets.token_urlsafe(32))')")
        return value

    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, values: Any) -> Any:
        """``admin_token_file`` fills ``admin_token`` (one of the two, never both)."""
        if not isinstance(values, dict) or values.get("admin_token_file") in (None, ""):
            return values
        if values.get("admin_token") not in (None, ""):
            raise ValueError("admin_token_file: set admin_token or admin_token_file, not both")
        path = Path(values["admin_token_file"])
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"admin_token_file: cannot read {path}: {exc.strerror or exc}") from None
        if len(token) < MIN_ADMIN_TOKEN:
            raise ValueError(f"admin_token_file: the token in {path} has {len(token)} characters; "
                             f"at least {MIN_ADMIN_TOKEN} are needed")
        return {**values, "admin_token": token}

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

    def redacted(self) -> dict[str, Any]:
        """The settings with URLs redacted and the admin token hidden (for logs)."""
        out = self.model_dump(exclude={"admin_token"})
        out["database_url"] = redact_url(self.database_url)
        out["read_database_url"] = [redact_url(u) for u in self.read_database_url]
        return out

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
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return msg if not loc or msg.startswith(f"{loc}:") else f"{loc}: {msg}"
