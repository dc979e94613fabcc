"""Fixtures for the dashboard tests: the real-server harness (Prometheus, casinos) and the Kubernetes emulator."""

from tests.harness import alertmanager_factory, casino_factory, prometheus_factory
from tests.kube.fixtures import api, kube

__all__ = ["alertmanager_factory", "api", "casino_factory", "kube", "prometheus_factory"]
