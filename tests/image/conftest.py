"""Fixtures for the image tests: the strict Kubernetes emulator the operator in the image talks to."""

from tests.kube.fixtures import kube

__all__ = ["kube"]
