"""In-memory fakes for the incident sinks (tests, simulator, local demos).

``FakeSink`` records every batch and can be switched down (RetryableError),
to reject (PermanentError), or to refuse every batch that holds a poisoned
incident (as a receiver that validates the whole request would); ``RecordingEventRecorder`` lives in
``controller.incidents.events`` beside its protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from controller.errors import PermanentError, RetryableError
from controller.incidents.events import RecordingEventRecorder
from controller.incidents.model import Incident

__all__ = ["FakeSink", "RecordingEventRecorder"]


class FakeSink:
    """A sink that remembers what it got; ``down`` makes it fail retryably."""

    def __init__(self, name: str = "fake", *, resend: bool = True) -> None:
        self.name = name
        self.resend = resend
        self.down = False
        self.reject = False
        self.poison: Callable[[Incident], bool] | None = None  # refuse any batch holding such an incident
        self.batches: list[list[Incident]] = []
        self.attempts = 0

    def send(self, incidents: Sequence[Incident], now: datetime) -> None:
        """Record the batch, or fail as configured."""
        self.attempts += 1
        if self.down:
            raise RetryableError(f"{self.name}: down")
        if self.reject:
            raise PermanentError(f"{self.name}: rejected")
        if self.poison is not None and any(self.poison(i) for i in incidents):
            raise PermanentError(f"{self.name}: 400 invalid label set in the batch")
        self.batches.append(list(incidents))

    def received(self) -> list[Incident]:
        """Every incident delivered, in order."""
        return [i for batch in self.batches for i in batch]

    def latest(self) -> dict[str, Incident]:
        """The latest delivered state of each incident id."""
        return {i.id: i for i in self.received()}
