"""Fixtures for the metric-source tests: a real PostgreSQL primary + standby (tests/pg_cluster.py)."""

from tests.pg_cluster import pg_cluster

__all__ = ["pg_cluster"]
