"""Shared test fixtures: where the real services and the shared data live.

PostgreSQL (127.0.0.1:5432, database ``test``) and Redis (127.0.0.1:6379) are
started by the machine before tests and CI; Prometheus and Alertmanager are
started by the fixtures of the tests that need them (tests/harness.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("PITBOSS_SHARED_DATA", REPO.parent / "shared" / "data"))
POSTGRES_URL = os.environ.get("PITBOSS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PITBOSS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only public traces in ../shared/data."""
    if not (SHARED_DATA / "metro_traffic_hourly.csv").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set PITBOSS_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the real PostgreSQL test database."""
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis."""
    return REDIS_URL
