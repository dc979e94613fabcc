"""Settings: URL normalisation, environment overrides, validation naming the field, secrets kept secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from casino.config import CasinoSettings, normalize_database_url, redact_url, settings_error
from cli.app import app

TOKEN = "s3cret-" + "t" * 30
PASSWORD = "hunter2-do-not-print"


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
           "PITBOSS_CASINO_ADMIN_TOKEN": TOKEN}
    s = CasinoSettings.from_env(env, max_in_flight=None, database_url="postgresql://u@h/db")
    assert s.max_in_flight == 7 and s.redis_url == "redis://h:1/0" and s.is_postgres
    assert s.admin_token is not None and s.admin_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(s)
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
        ({"admin_token": "short"}, "admin_token"),
        ({"auth_rate_limit_username": "lots"}, "auth_rate_limit_username"),
        ({"auth_rate_limit_address": "10 per fortnight"}, "auth_rate_limit_address"),
        ({"read_database_url": "sqlite:///x.db"}, "read_database_url"),
        ({"read_database_url": "postgresql://h:port/db"}, "read_database_url"),
        ({"replica_max_lag_seconds": -1}, "replica_max_lag_seconds"),
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


def test_admin_token_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")  # a Secret mounted as a file usually ends with a newline
    s = CasinoSettings.from_env({"PITBOSS_CASINO_ADMIN_TOKEN_FILE": str(path)})
    assert s.admin_token is not None and s.admin_token.get_secret_value() == TOKEN
    path.write_text("too-short\n")
    with pytest.raises(ValidationError) as exc:
        CasinoSettings(admin_token_file=path)
    assert settings_error(exc.value).startswith("admin_token_file: ") and "too-short" not in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        CasinoSettings(admin_token_file=tmp_path / "missing")
    assert settings_error(exc.value).startswith("admin_token_file: cannot read")
    with pytest.raises(ValidationError) as exc:
        CasinoSettings(admin_token_file=path, admin_token=TOKEN)
    assert "not both" in settings_error(exc.value)


@pytest.mark.parametrize("url", [
    f"mysql://casino:{PASSWORD}@db/casino",
    f"postgresql://casino:{PASSWORD}@db:notaport/casino",
    f"postgresql://casino:{PASSWORD}@[::1/casino",
    f"postgresql://casino:{PASSWORD}@db:99999/casino",
])
def test_bad_database_urls_never_echo_the_password(url: str) -> None:
    for field in ("database_url", "read_database_url"):
        with pytest.raises(ValidationError) as exc:
            CasinoSettings.model_validate({field: url})
        message = settings_error(exc.value)
        assert message.startswith(f"{field}: ") and "***" in message, message
        assert PASSWORD not in str(exc.value) and PASSWORD not in message
        result = CliRunner().invoke(app, ["casino", "serve", f"--{field.replace('_', '-')}", url])
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {field}: "), result.output
        assert PASSWORD not in result.output


def test_settings_never_show_urls_passwords_or_the_token() -> None:
    s = CasinoSettings(database_url=f"postgresql://casino:{PASSWORD}@db/casino", admin_token=TOKEN,
                       read_database_url=f"postgresql://casino:{PASSWORD}@replica/casino")
    assert PASSWORD not in repr(s) and TOKEN not in repr(s) and PASSWORD not in str(s.redacted())
    assert s.redacted()["database_url"] == "postgresql+asyncpg://casino:***@db/casino"
    assert redact_url("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"  # an @ inside the password
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_several_read_replicas_from_one_variable() -> None:
    s = CasinoSettings.from_env({"PITBOSS_CASINO_READ_DATABASE_URL": "postgresql://h1/db, postgresql://h2:5433/db"})
    assert s.read_database_url == ["postgresql+asyncpg://h1/db", "postgresql+asyncpg://h2:5433/db"]
