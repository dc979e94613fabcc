"""Fixtures for the Kubernetes-facing tests: the strict emulator and an official-client ApiClient."""

from tests.kube.fixtures import api, kube

__all__ = ["api", "kube"]
