"""The metric names casino/ and controller/ export, collected from their prometheus_client registries.

Counters are exported as ``<name>_total``, histograms as ``<name>_bucket``,
``_sum`` and ``_count``, gauges under their name: what Prometheus stores, so
what a dashboard can select. A renamed metric drops out of this set and the
dashboard tests fail at once.
"""

from __future__ import annotations

from casino.metrics import CasinoMetrics
from controller.telemetry.metrics import OperatorMetrics

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count"),
            "gauge": ("",), "info": ("_info",), "stateset": ("",), "unknown": ("",)}


def exported_names() -> set[str]:
    """Every sample name the casino's and the operator's registries can expose."""
    names: set[str] = set()
    for registry in (CasinoMetrics(max_in_flight=4).registry, OperatorMetrics().registry):
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names
