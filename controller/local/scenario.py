"""The demo's scenario: a casino-shaped history and a live window with one known event spike.

Called by the local run (``controller.local.run``) and its tests. It takes
``forecasting.synth`` (28 days of 1-minute casino demand with random
promotions, tournaments, free spins and jackpots) plus one more day, picks a
live window on that last day that no random event touches, and shapes one
announced event into it (the synth shape: linear ramp, plateau, exponential
decay) at ``event_at`` of the window. The whole trace is then scaled so that
demand just before the live window is ``base_rate`` requests/s: the trace's
units become the real requests/s the load generator sends, and the same
units the forecaster learns and the policy sizes in. Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.synth import KINDS, synth_trace
from forecasting.timeutil import stamps_ns, td_ns, ts_ns

STEP = pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class Scenario:
    """History to fit on, the live window to replay, and the event calendar."""

    history: pd.Series  # requests/s per 1-minute step, ends right before live.index[0]
    live: pd.Series  # requests/s per 1-minute step: what the load generator replays
    events: list[Event]  # every known event (history and live), sorted by start
    event: Event  # the live event the demo pre-scales for

    @property
    def start(self) -> pd.Timestamp:
        return self.live.index[0]

    def rate_at(self, at: pd.Timestamp) -> float:
        """The live trace's rate at ``at``, linearly interpolated between steps (0 outside)."""
        stamps = stamps_ns(self.live.index)  # ns whatever the index's resolution
        x = float(ts_ns(at))
        if x < stamps[0] or x > stamps[-1] + td_ns(STEP):
            return 0.0
        return float(np.interp(x, stamps.astype(float), self.live.to_numpy()))


def build_scenario(
    live_minutes: int,
    *,
    kind: str = "tournament",
    event_at: float = 0.4,
    event_share: float = 0.4,
    lift: float | None = None,
    base_rate: float = 10.0,
    days: int = 28,
    seed: int = 7,
) -> Scenario:
    """A scenario whose live window is ``live_minutes`` long, with one ``kind`` event inside it."""
    if live_minutes < 20:
        raise ValueError(f"live_minutes: expected at least 20 simulated minutes, got {live_minutes}")
    if not 0.1 <= event_at <= 0.8:
        raise ValueError(f"event_at: expected a share of the window in [0.1, 0.8], got {event_at}")
    if not 0.05 <= event_share <= 1 - event_at:
        raise ValueError(f"event_share: expected a share in [0.05, {1 - event_at:g}], got {event_share}")
    if base_rate <= 0:
        raise ValueError(f"base_rate: expected a positive requests/s, got {base_rate}")
    shape_of = {k.name: k for k in KINDS}
    if kind not in shape_of:
        raise ValueError(f"kind: expected one of {', '.join(shape_of)}, got {kind!r}")
    spec = shape_of[kind]
    lift = spec.lift if lift is None else lift
    if lift <= 1:
        raise ValueError(f"lift: expected a multiplier above 1, got {lift}")

    series, events = synth_trace(days=days + 1, seed=seed)
    last_day = series.index[0] + pd.Timedelta(days=days)
    length = pd.Timedelta(minutes=live_minutes)
    margin = pd.Timedelta(hours=2)  # no random event's shape (ramp/decay) near the window
    start = None
    # Afternoon to evening: a busy, steady baseline; the first window no random event touches.
    for minutes in range(12 * 60, 21 * 60, 15):
        cand = last_day + pd.Timedelta(minutes=minutes)
        if cand + length > series.index[-1]:
            break
        if all(e.end + margin <= cand or e.start - margin >= cand + length for e in events):
            start = cand
            break
    if start is None:
        raise ValueError(f"seed: no quiet {live_minutes}-minute window on the last synthesized day; try another")

    ev_start = (start + length * event_at).floor(STEP)
    ev_end = ev_start + (length * event_share).floor(STEP)
    event = Event(f"live-{kind}", kind, ev_start, ev_end, expected_lift=spec.lift if spec.announce_lift else None)
    t = np.asarray((series.index - ev_start) / STEP, dtype=float)
    e = (ev_end - ev_start) / STEP
    ramp = spec.ramp_minutes
    shape = np.clip(t / ramp, 0.0, 1.0)
    shape = np.where(t >= e, np.exp(-np.clip(t - e, 0.0, None) / max(ramp, 5.0)), shape)
    shape = np.where(t < 0, 0.0, shape)
    shaped = series * (1.0 + (lift - 1.0) * shape)

    before = shaped[start - pd.Timedelta(minutes=30): start - STEP]
    scale = base_rate / float(before.mean())
    shaped = shaped * scale
    history = shaped[: start - STEP]
    live = shaped[start: start + length - STEP]
    history.index.freq = STEP
    live.index.freq = STEP
    known = sorted([x for x in events if x.start < start] + [event], key=lambda x: x.start)
    return Scenario(history=history, live=live, events=known, event=event)
