"""Fixtures for the CLI tests: the strict Kubernetes emulator and the real-server harness (Prometheus)."""

from tests.harness import prometheus_factory
from tests.kube.fixtures import api, kube

__all__ = ["api", "kube", "prometheus_factory"]
