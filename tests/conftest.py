"""Shared test fixtures: where the real services and the repository's data live.

PostgreSQL (127.0.0.1:5432, database ``test``) and Redis (127.0.0.1:6379) are
started by the machine before tests and CI; Prometheus and Alertmanager are
started by the fixtures of the tests that need them (tests/harness.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"  # the public traces, committed with their README (source, licence, columns)
POSTGRES_URL = os.environ.get("PITBOSS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PITBOSS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_repo(arg: str) -> str:
    """A documented command's argument with a repository-relative ``data/...`` path made absolute
    (the docs show commands run from the repository root; tests run them elsewhere)."""
    return str(REPO / arg) if arg.startswith("data/") else arg


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The public traces in the repository's data/ (read-only: never write there)."""
    if not (DATA / "metro_traffic_hourly.csv").exists():
        pytest.fail(f"data not found at {DATA}: the repository's data/ folder is incomplete")
    return DATA


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the real PostgreSQL test database."""
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis."""
    return REDIS_URL
