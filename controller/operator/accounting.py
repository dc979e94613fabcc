"""Per-policy accounting of the operator's metrics: ``controller.telemetry.accounting`` (re-exported here)."""

from __future__ import annotations

from controller.telemetry.accounting import CycleFacts, PolicyAccounting

__all__ = ["CycleFacts", "PolicyAccounting"]
