"""A kind's onset: its log lift by step since an event's start, for the residual filter's ramp.

Called by ``calendar_fit`` after each fit (``onset_profiles``) and by
``calendar_filter.run_filter`` on each fit and update (``onset_window``).

The shape bins (``forecasting.features``) place an event's ramp in quarters of
R = clamp(duration / 4, one step, 30 minutes), so a kind's ramp bins learn its
ramp *as a share of R*. A crowd does not ramp in shares of the duration: a
tournament fills in its first ten minutes whether it lasts one hour or two.
An occurrence shorter than the kind's past ones then has its ramp bins early
in its real ramp, where the bins' lift (learned on longer ramp bins) is far
above what is seen: every ramp point's residual is strongly negative, and the
filter, which reads a ramp residual as a lift deviation times the ramp's
nominal weight (``calendar_filter.advance``), takes it for a weaker event and
revises the whole plateau down (the demo's 36-minute tournament: p95 over
the dwell from 51 to 38 req/s in six minutes, back to 45 by the plateau).

So the fit also measures, per kind, the mean log lift at each step since the
start (the first ``MAX_RAMP``), from the in-sample residuals of its past
occurrences plus the bins' lift there, and keeps that *onset profile* only
where it predicts those occurrences' ramp points better than the bins do,
leave-one-occurrence-out (the bins' in-sample error inflated as
``calendar_stats.shape_spread`` does). On an occurrence's ramp bins the filter
then reads the residual against the profile, with the profile's share of the
plateau lift as the deviation's weight and the profile's own miss as extra
observation noise. The forecast's centre keeps the bins (the ramp ahead is
forecast as before); only what the update infers from a ramp changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from forecasting.base import Event
from forecasting.features import MAX_RAMP, EventLayout, event_window
from forecasting.timeutil import td_ns, ts_ns

MIN_OCCURRENCES = 3  # a step since start seen on fewer past occurrences has no profile value


@dataclass(frozen=True, eq=False)
class Onset:
    """One kind's onset profile: per step since start, the mean log lift and what it misses."""

    lift: np.ndarray  # mean log lift at step k since the start (NaN: too few occurrences)
    var: np.ndarray  # its leave-one-out squared miss beyond the residual noise (0 where NaN)

    def __post_init__(self) -> None:
        self.lift.setflags(write=False)
        self.var.setflags(write=False)


def _ramp_end(event: Event, step_ns: int) -> int:
    """End (ns) of the event's ramp bins: start + R (``features.event_window``)."""
    s, e = ts_ns(event.start), ts_ns(event.end)
    return s + max(step_ns, min(td_ns(MAX_RAMP), (e - s) // 4))


def onset_profiles(
    stamps: np.ndarray,
    resid: np.ndarray,
    evs: Sequence[Event],
    layout: EventLayout,
    beta_e: np.ndarray,
    step_ns: int,
    base_var: float,
) -> dict[str, Onset]:
    """Per kind whose onset profile beats its ramp bins out of sample, that profile.

    ``resid`` are the fit's in-sample residuals against ``beta_e`` (the unpooled event
    coefficients), so resid + the kind's bin lift is the lift its occurrence realised."""
    kind_at, _, _ = layout.offsets()
    nb = layout.bins.width
    steps = max(1, td_ns(MAX_RAMP) // step_ns)
    rows: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {k: [] for k in kind_at}
    for event in evs:
        j = kind_at.get(event.kind)
        if j is None:
            continue
        s, e = ts_ns(event.start), ts_ns(event.end)
        i0, i1, bins = event_window(stamps, event, step_ns)
        tt = stamps[i0:i1]
        since = (tt - s) // step_ns
        on = (tt >= s) & (tt < e) & (since < steps)
        lift = resid[i0:i1] + bins @ beta_e[j : j + nb]
        ok = on & np.isfinite(lift)
        ramp = ok & (tt < _ramp_end(event, step_ns))  # the points its ramp bins cover
        obs = np.full(steps, np.nan)
        obs[since[ok]] = lift[ok]
        in_ramp = np.zeros(steps, dtype=bool)
        in_ramp[since[ramp]] = True
        bin_miss = np.full(steps, np.nan)
        bin_miss[since[ramp]] = resid[i0:i1][ramp]
        bin_of = np.full(steps, -1)
        bin_of[since[ramp]] = np.argmax(bins[ramp], axis=1)
        rows[event.kind].append((obs, in_ramp, bin_miss, bin_of))
    out: dict[str, Onset] = {}
    for kind, occ in rows.items():
        if len(occ) < MIN_OCCURRENCES:
            continue
        obs = np.vstack([row[0] for row in occ])
        in_ramp = np.vstack([row[1] for row in occ])
        bin_miss = np.vstack([row[2] for row in occ])
        bin_of = np.vstack([row[3] for row in occ])
        seen = np.isfinite(obs)
        count = seen.sum(axis=0)
        total = np.where(seen, obs, 0.0).sum(axis=0)
        # Leave one occurrence out: the profile the others give, at each of its steps.
        with np.errstate(divide="ignore", invalid="ignore"):
            loo = (total[None, :] - np.where(seen, obs, 0.0)) / (count[None, :] - 1)
        usable = seen & in_ramp & (count[None, :] >= MIN_OCCURRENCES)
        if not usable.any():
            continue
        prof_ss = float(np.sum(np.square(obs - loo)[usable]))
        # The bins' in-sample error, as a new occurrence would see it: a bin's lift is fitted on its n
        # points, so each of its squared residuals is taken times (n + 1) / (n - 1).
        bin_ss = 0.0
        for b in np.unique(bin_of[usable]).tolist():
            miss = bin_miss[usable & (bin_of == b)]
            bin_ss += float(np.sum(np.square(miss))) * (miss.size + 1) / max(miss.size - 1, 1)
        if prof_ss >= bin_ss:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = np.where(count >= MIN_OCCURRENCES, total / count, np.nan)
            miss = np.where(seen, np.square(obs - loo), 0.0).sum(axis=0) / np.maximum(count, 1)
        var = np.where(np.isfinite(lift), np.maximum(miss - base_var, 0.0), 0.0)
        out[kind] = Onset(lift=np.asarray(lift, dtype=float), var=np.asarray(var, dtype=float))
    return out


def onset_window(
    onset: Mapping[str, Onset],
    event: Event,
    tt: np.ndarray,
    step_ns: int,
    bin_lift: np.ndarray,
    nominal: np.ndarray,
    plateau: float,
    prior: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Over the event's window stamps ``tt``: (ramp points mask, residual shift, deviation weight, extra
    noise) for the points of its ramp bins that its kind's onset profile covers; None without one.

    The shift turns a residual against the bins' lift ``bin_lift`` into one against the profile; the
    weight is the profile's share of the ``plateau`` log lift (a deviation of the plateau scales the ramp;
    the ``nominal`` shape weight for a kind with no plateau lift);
    the extra noise is what the profile missed beyond the kind's lift spread ``prior`` times the weight^2."""
    found = onset.get(event.kind)
    if found is None:
        return None
    s = ts_ns(event.start)
    since = (tt - s) // step_ns
    inside = (tt >= s) & (tt < _ramp_end(event, step_ns)) & (tt < ts_ns(event.end)) & (since < len(found.lift))
    at = np.where(inside, since, 0)
    mask = inside & np.isfinite(found.lift[at])
    if not mask.any():
        return None
    lift = np.where(mask, found.lift[at], 0.0)
    shift = np.where(mask, bin_lift - lift, 0.0)
    share = np.clip(lift / plateau, 0.0, 1.0) if abs(plateau) > 1e-3 else nominal
    extra = np.where(mask, np.maximum(found.var[at] - prior * share**2, 0.0), 0.0)
    return mask, shift, share, extra
