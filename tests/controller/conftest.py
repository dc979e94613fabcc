"""Fixtures for controller tests: the real-server harness (Prometheus, Alertmanager, exporters)."""

from tests.harness import alertmanager, alertmanager_factory, casino_factory, exporter_factory, prometheus_factory

__all__ = ["alertmanager", "alertmanager_factory", "casino_factory", "exporter_factory", "prometheus_factory"]
