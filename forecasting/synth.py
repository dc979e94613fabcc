"""Casino-shaped synthetic traces: a demand series and its event calendar.

Called by ``pitboss trace synth``, the tests and the benchmarks. The shape:
a daily cycle with a quiet early morning and an evening peak, a weekend
uplift (Friday evening included), a slowly wandering level, Poisson noise,
and scheduled events of several kinds (promotion, tournament, free_spins,
jackpot) that lift traffic 2-6x with a ramp-up, a plateau and a decay.
Each occurrence's lift varies around its kind's typical lift. Pure and
deterministic for a seed: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.timeutil import utc_ns


@dataclass(frozen=True)
class Kind:
    """How events of one kind look: typical lift, duration range, ramp, daily rate."""

    name: str
    lift: float
    min_minutes: int
    max_minutes: int
    ramp_minutes: float
    per_day: float
    announce_lift: bool  # whether the calendar carries an expected_lift


KINDS: tuple[Kind, ...] = (
    Kind("promotion", 2.0, 120, 240, 20, 0.45, True),
    Kind("tournament", 3.5, 60, 120, 10, 0.35, True),
    Kind("free_spins", 2.6, 30, 60, 5, 0.35, False),
    Kind("jackpot", 5.5, 20, 40, 3, 0.15, False),
)


def _daily_profile(hours: np.ndarray) -> np.ndarray:
    """Relative demand by hour of day (UTC): trough ~05:00, evening peak ~21:00."""

    def bump(centre: float, width: float) -> np.ndarray:
        gap = (hours - centre + 12.0) % 24.0 - 12.0  # circular distance in hours
        return np.exp(-0.5 * (gap / width) ** 2)

    return 0.25 + 0.45 * bump(14.0, 3.5) + bump(21.0, 2.6) + 0.6 * bump(0.5, 2.0)


def synth_trace(
    days: int = 28,
    step: pd.Timedelta | str = "1min",
    seed: int = 7,
    *,
    start: str | pd.Timestamp = "2026-01-05T00:00:00Z",
    base_per_minute: float = 200.0,
) -> tuple[pd.Series, list[Event]]:
    """Return (series, events): ``days`` of demand per ``step`` and the events that shaped it."""
    if days < 1:
        raise ValueError(f"days: expected at least 1, got {days}")
    step = pd.Timedelta(step)
    if step < pd.Timedelta(minutes=1) or step % pd.Timedelta(minutes=1) or pd.Timedelta(days=1) % step:
        raise ValueError(f"step: expected whole minutes that divide a day (1m, 5m, 1h...), got {step}")
    if base_per_minute <= 0:
        raise ValueError(f"base_per_minute: expected a positive rate, got {base_per_minute}")
    rng = np.random.default_rng(seed)
    start = utc_ns(start)  # pandas 3 parses the text at second resolution: every stamp here is ns
    index = pd.date_range(start, periods=int(pd.Timedelta(days=days) / step), freq=step)
    minutes = step.total_seconds() / 60.0

    # Simulate on a 1-minute grid, then sum into steps (so coarser steps are true aggregates).
    fine = pd.date_range(start, periods=days * 1440, freq="1min")
    hours = fine.hour.to_numpy() + fine.minute.to_numpy() / 60.0
    dow = fine.day_of_week.to_numpy()
    weekend = np.where(dow >= 5, 1.3, 1.0)
    weekend = np.where((dow == 4) & (hours >= 17), 1.15, weekend)
    wander = np.zeros(len(fine))
    shocks = rng.normal(0.0, 0.004, len(fine))
    for i in range(1, len(fine)):  # slow AR(1) level wander, ~5% amplitude
        wander[i] = 0.9993 * wander[i - 1] + shocks[i]
    rate = base_per_minute * _daily_profile(hours) * weekend * np.exp(wander)

    events: list[Event] = []
    lift = np.ones(len(fine))
    t_min = (fine - start) / pd.Timedelta(minutes=1)
    t_min = np.asarray(t_min, dtype=float)
    for kind in KINDS:
        count = rng.poisson(kind.per_day * days)
        for n in range(count):
            day = rng.integers(0, days)
            # Mostly evenings, sometimes afternoons.
            hour = rng.choice([13, 15, 18, 19, 20, 21, 22], p=[0.08, 0.1, 0.14, 0.2, 0.22, 0.16, 0.1])
            begin = start + pd.Timedelta(days=int(day), hours=int(hour), minutes=int(rng.integers(0, 4)) * 15)
            length = pd.Timedelta(minutes=int(rng.integers(kind.min_minutes, kind.max_minutes + 1)))
            actual = kind.lift * float(np.exp(rng.normal(0.0, 0.1)))
            s = (begin - start) / pd.Timedelta(minutes=1)
            e = s + length / pd.Timedelta(minutes=1)
            shape = np.clip((t_min - s) / kind.ramp_minutes, 0.0, 1.0)
            shape = np.where(t_min >= e, np.exp(-np.clip(t_min - e, 0.0, None) / max(kind.ramp_minutes, 5.0)), shape)
            shape = np.where(t_min < s, 0.0, shape)
            lift *= 1.0 + (actual - 1.0) * shape
            expected = kind.lift if kind.announce_lift else None
            events.append(Event(f"{kind.name}-{n + 1:03d}", kind.name, begin, begin + length, expected))
    demand = rng.poisson(rate * lift).astype(float)
    values = demand.reshape(-1, round(minutes)).sum(axis=1)
    series = pd.Series(values, index=index, name="casino", dtype=float)
    series.index.freq = step
    events.sort(key=lambda e: (e.start, e.name))
    return series, events
