"""Settings: URL normalisation, environment overrides, validation naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from casino.config import CasinoSettings, normalize_database_url, settings_error


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
    ],
)
def test_urls_map_to_async_drivers(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


def test_environment_then_overrides() -> None:
    env = {"PITBOSS_CASINO_MAX_IN_FLIGHT": "7", "PITBOSS_CASINO_REDIS_URL": "redis://h:1/0",
           "PITBOSS_CASINO_ADMIN_TOKEN": "s3cret"}
    s = CasinoSettings.from_env(env, max_in_flight=None, database_url="postgresql://u@h/db")
    assert s.max_in_flight == 7 and s.redis_url == "redis://h:1/0" and s.is_postgres
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert CasinoSettings.from_env(env, max_in_flight=9).max_in_flight == 9


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"database_url": "mysql://x"}, "database_url"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": "many"}, "max_in_flight"),
        ({"redis_url": "http://x"}, "redis_url"),
        ({"db_schema": "Drop Table"}, "db_schema"),
        ({"scrypt_n": 1000}, "scrypt_n"),
        ({"currency": "euro"}, "currency"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_settings_name_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        CasinoSettings.model_validate(values)
    assert settings_error(exc.value).startswith(field)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_needs_a_file(url: str) -> None:
    from casino.db import Database

    with pytest.raises(ValueError, match=r"^database_url: SQLite needs a file path"):
        Database(CasinoSettings(database_url=url))
