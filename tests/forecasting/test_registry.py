"""The model registry: ``create`` by name, and its per-class ``factory`` check made once."""

from __future__ import annotations

import inspect

import pytest

from forecasting import registry


def test_create_reads_a_model_class_signature_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``factory`` check is made once per class, not on every create (a fleet creates thousands)."""
    registry.takes_factory.cache_clear()
    reads: list[object] = []
    real = inspect.signature

    def counting(obj: object, *args: object, **kwargs: object) -> inspect.Signature:
        reads.append(obj)
        return real(obj, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inspect, "signature", counting)
    for _ in range(3):
        registry.create("seasonal-naive")
        assert "factory" in vars(registry.create("auto"))  # auto is still handed the table
    assert [getattr(c, "name", c) for c in reads] == ["seasonal-naive", "auto"]
