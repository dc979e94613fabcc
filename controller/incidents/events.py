"""Incidents as Kubernetes Events, through a small ``EventRecorder`` protocol.

The operator implements ``EventRecorder`` with the ``kubernetes`` client
(an Event whose involvedObject is the ScalingPolicy); ``RecordingEventRecorder``
is the in-memory fake. ``KubernetesEventSink`` is the engine's sink: one
``Warning`` event when an incident fires (what, why, runbook and id), one
``Normal`` event when it resolves (it does not want re-sends).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from controller.incidents.model import Incident

EventType = Literal["Normal", "Warning"]
POLICY_KIND = "ScalingPolicy"


class EventRecorder(Protocol):
    """Writes one Kubernetes Event about an object. Raises RetryableError when the API is down."""

    def record(self, *, namespace: str, kind: str, name: str, event_type: EventType, reason: str,
               message: str, at: datetime) -> None:
        """Record an event on ``kind``/``name`` in ``namespace``."""
        ...


@dataclass(frozen=True)
class RecordedEvent:
    """What the fake recorder keeps."""

    namespace: str
    kind: str
    name: str
    event_type: EventType
    reason: str
    message: str
    at: datetime


class RecordingEventRecorder:
    """In-memory EventRecorder for tests and the local run."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def record(self, *, namespace: str, kind: str, name: str, event_type: EventType, reason: str,
               message: str, at: datetime) -> None:
        """Append the event."""
        self.events.append(RecordedEvent(namespace, kind, name, event_type, reason, message, at))


class KubernetesEventSink:
    """Sink: a Warning Event on fire, a Normal Event on resolve, on the incident's ScalingPolicy."""

    resend = False

    def __init__(self, recorder: EventRecorder, *, name: str = "kubernetes-events") -> None:
        self.recorder = recorder
        self.name = name

    def send(self, incidents: Sequence[Incident], now: datetime) -> None:
        """Record one event per incident (the latest state of each)."""
        for incident in incidents:
            firing = incident.firing
            self.recorder.record(
                namespace=incident.labels.get("namespace", "default"),
                kind=POLICY_KIND,
                name=incident.labels.get("policy", "unknown"),
                event_type="Warning" if firing else "Normal",
                reason=incident.alertname if firing else f"{incident.alertname}Resolved",
                message=(f"[{incident.severity}] {incident.summary}: {incident.description}"
                         f" ({incident.runbook_url}) id={incident.id}"
                         if firing else f"resolved: {incident.summary} id={incident.id}"),
                at=incident.updated_at,
            )
