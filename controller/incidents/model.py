"""Plain data of the incident pipeline: Signal (a rule's finding) and Incident.

Rules (``controller.incidents.rules``) return ``Signal``s; the engine turns
them into ``Incident``s with a stable fingerprint and a firing -> resolved
lifecycle; sinks, the local log and the CLI read ``Incident``s. Nothing here
does I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

State = Literal["firing", "resolved", "handed_off"]  # handed_off: another replica watches it now


class Severity(StrEnum):
    """How urgently a person must look: page now, or a ticket for working hours."""

    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True)
class Signal:
    """One rule's finding this cycle: what is wrong (labels) and why (summary, description)."""

    alertname: str
    severity: Severity
    labels: Mapping[str, str]  # identity beyond alertname: namespace, policy, slo, window...
    summary: str  # one line: what
    description: str  # why, with the numbers
    runbook: str  # anchor in docs/runbooks.md
    value: float | None = None

    def fingerprint(self) -> str:
        """Stable id of *what* is wrong: alertname plus identity labels (never the numbers)."""
        return fingerprint(self.alertname, self.labels)


def fingerprint(alertname: str, labels: Mapping[str, str]) -> str:
    """16 hex digits of SHA-256 over the alertname and the sorted identity labels."""
    canonical = json.dumps([alertname, sorted((str(k), str(v)) for k, v in labels.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Incident:
    """An incident with its lifecycle. ``id`` is the fingerprint."""

    id: str
    alertname: str
    severity: Severity
    labels: dict[str, str]
    summary: str
    description: str
    runbook_url: str
    state: State
    starts_at: datetime
    updated_at: datetime
    ends_at: datetime | None = None
    value: float | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        """True while the incident is open."""
        return self.state == "firing"

    def resolve(self, at: datetime) -> Incident:
        """The same incident, resolved at ``at``."""
        return replace(self, state="resolved", ends_at=at, updated_at=at)

    def hand_off(self, at: datetime) -> Incident:
        """The same incident, no longer watched by this instance (still open: its new owner watches it)."""
        return replace(self, state="handed_off", updated_at=at)

    def alert_labels(self) -> dict[str, str]:
        """Labels as an Alertmanager alert carries them (alertname, severity, pitboss_id, identity)."""
        return {**self.labels, "alertname": self.alertname, "severity": str(self.severity), "pitboss_id": self.id}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (ISO 8601 timestamps)."""
        return {
            "id": self.id,
            "alertname": self.alertname,
            "severity": str(self.severity),
            "labels": dict(self.labels),
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
            "state": self.state,
            "starts_at": self.starts_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "value": self.value,
            "annotations": dict(self.annotations),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        """Inverse of ``to_dict``."""
        state = data["state"]
        if state not in ("firing", "resolved", "handed_off"):
            raise ValueError(f"state: expected firing, resolved or handed_off, got {state!r}")
        return cls(
            id=data["id"],
            alertname=data["alertname"],
            severity=Severity(data["severity"]),
            labels=dict(data["labels"]),
            summary=data["summary"],
            description=data["description"],
            runbook_url=data["runbook_url"],
            state=state,
            starts_at=datetime.fromisoformat(data["starts_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            ends_at=datetime.fromisoformat(data["ends_at"]) if data.get("ends_at") else None,
            value=data.get("value"),
            annotations=dict(data.get("annotations") or {}),
        )
