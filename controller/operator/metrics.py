"""The operator's metrics: ``controller.telemetry.metrics``, shared with the local run (re-exported here)."""

from __future__ import annotations

from controller.telemetry.metrics import OperatorMetrics, serve

__all__ = ["OperatorMetrics", "serve"]
