"""The clocks the operator reads, injected so tests run on fake ones.

Two readings: ``now()`` is the wall clock (tz-aware UTC), which the decision
core gets once per policy in ``ObservedState`` and which stamps what other
machines read (a Lease's renewTime, an alert's endsAt); ``monotonic()`` is
this process's monotonic clock in seconds, the only one leader election
measures intervals with (wall clocks of two machines may be seconds apart
and jump). ``FakeClock`` is moved by tests and the benchmark with
``advance``/``set``; ``OffsetClock`` is another machine's view of a base
clock whose wall time is off by a fixed amount (clock-skew tests).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the time: wall (tz-aware UTC) and monotonic (seconds, arbitrary origin)."""

    def now(self) -> datetime:
        """The current time, tz-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (only differences mean anything)."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        """The current time, tz-aware UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to (thread-safe).

    Its monotonic reading moves with every ``advance`` and with every forward ``set``; a
    backward ``set`` moves the wall clock only, as an NTP step would.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start: expected a tz-aware datetime")
        self._now = start.astimezone(UTC)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The fake current time."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds the clock has moved forward since it was made."""
        with self._lock:
            return self._mono

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta``; returns the new time."""
        if delta < timedelta(0):
            raise ValueError(f"delta: must not be negative, got {delta}")
        with self._lock:
            self._now += delta
            self._mono += delta.total_seconds()
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (tz-aware)."""
        with self._lock:
            target = when.astimezone(UTC)
            self._mono += max(0.0, (target - self._now).total_seconds())
            self._now = target


class OffsetClock:
    """``base`` seen from a machine whose wall clock is ``offset`` ahead (negative: behind).

    Time passes at the same rate as on ``base``; the monotonic origin differs too (it is
    per machine), so nothing can compare two machines' monotonic readings.
    """

    def __init__(self, base: Clock, offset: timedelta, *, monotonic_origin: float = 1000.0) -> None:
        self.base = base
        self.offset = offset
        self.origin = monotonic_origin

    def now(self) -> datetime:
        """The base's wall time plus the offset."""
        return self.base.now() + self.offset

    def monotonic(self) -> float:
        """The base's monotonic reading from another origin."""
        return self.base.monotonic() + self.origin
