"""Fixtures for the chart tests: the strict Kubernetes emulator (for the sync-events RBAC test)."""

from tests.kube.fixtures import api, kube

__all__ = ["api", "kube"]
