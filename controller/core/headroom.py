"""Which forecast quantile a step is sized at: the fixed ``headroomQuantile``, or the newsvendor rule.

With ``costs: {unservedRequest, replicaHour}`` in the policy, the quantile
is the one that minimises the expected cost of the step (the newsvendor
critical ratio). Over the sizing window W (lead time + sync period):

* c_u: what one missing replica costs, the demand it would have served
  left unserved: ``unservedRequest x capacityPerReplica x W`` (seconds);
* c_o: what one idle replica costs: ``replicaHour x W`` (hours);
* quantile = c_u / (c_u + c_o).

W cancels in the ratio (both costs grow with it), but the message quotes
both costs over the window so a reader can check them. Any ratio in (0, 1)
is used as it is: between the forecast's quantile columns it is read
linearly, beyond its outermost ones on an exponential tail fitted to the
two outermost (``Forecast.quantile``); then the message names the levels
the tail reads. A ratio past p99 (a dropped request costing a lot more
than an idle replica) is sized above p99 rather than capped there. Pure
(no clock, no I/O): called by ``controller.core.decide``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from controller.core.durations import format_duration
from controller.core.policy import Costs, Policy
from forecasting.base import Forecast, tail_levels


@dataclass(frozen=True)
class Headroom:
    """The quantile one decision sizes at, and the words that say why."""

    quantile: float
    source: str  # "headroomQuantile" | "newsvendor"
    ratio: float | None = None  # the newsvendor critical ratio (what is sized at)
    extrapolated: bool = False  # the ratio lies beyond the forecast's stored quantiles: read on its tail
    text: str = ""


def label(q: float) -> str:
    """``p95`` for a whole percentage, ``q0.973`` or ``q0.9999`` otherwise (``_ratio``: never ``q1``)."""
    pct = q * 100
    return f"p{round(pct)}" if abs(pct - round(pct)) < 1e-9 and round(pct) < 100 else f"q{_ratio(q)}"


def critical_ratio(costs: Costs, capacity_per_replica: float, window: timedelta) -> tuple[float, float, float]:
    """(c_u, c_o, c_u / (c_u + c_o)) of one replica over ``window``."""
    if capacity_per_replica <= 0:
        raise ValueError(f"capacityPerReplica: must be positive, got {capacity_per_replica}")
    seconds = window.total_seconds()
    if seconds <= 0:
        raise ValueError(f"window: must be positive, got {window}")
    under = costs.unserved_request * capacity_per_replica * seconds
    over = costs.replica_hour * seconds / 3600.0
    return under, over, under / (under + over)


def forecast_levels(forecast: Forecast | None) -> tuple[float, float] | None:
    """The lowest and highest quantile ``forecast`` holds (``Forecast.quantile`` extrapolates beyond them)."""
    if forecast is None:
        return None
    stored = sorted(forecast.quantiles)
    return (stored[0], stored[-1]) if stored else (0.5, 0.5)  # no quantile columns: the mean only


def _ratio(q: float) -> str:
    """0.95, 0.973, 0.9999, 0.99999: three significant digits, and past 0.999 as many decimals as the
    distance to 1 needs (three significant digits of 1 - q), so a ratio is never printed as 1."""
    text = f"{q:.3g}"
    tail = 1.0 - q
    if (text != "1" and q <= 0.999) or not 0.0 < tail < 1.0:
        return text
    decimals = min(15, 2 - math.floor(math.log10(tail)))
    return f"{q:.{decimals}f}".rstrip("0")


def _money(x: float) -> str:
    return f"{x:.3g}"


def choose(policy: Policy, forecast: Forecast | None, window: timedelta) -> Headroom:
    """The quantile to size at over ``window`` (lead time + sync period), with its reason."""
    costs = policy.costs
    if costs is None:
        q = policy.headroom_quantile
        return Headroom(quantile=q, source="headroomQuantile", text=f"headroom {label(q)} (headroomQuantile)")
    under, over, ratio = critical_ratio(costs, policy.capacity_per_replica, window)
    extrapolated, note = False, ""
    levels = forecast_levels(forecast)
    if forecast is not None and levels is not None and not levels[0] <= ratio <= levels[1] \
            and len(forecast.quantiles) >= 2:
        extrapolated = True
        a, b = tail_levels(list(forecast.quantiles), ratio)
        side = "highest" if ratio > a else "lowest"
        note = (f"; beyond the forecast's {side} quantile {label(a)}: read on its exponential tail"
                f" (scale from {label(b)}..{label(a)})")
    text = (
        f"headroom newsvendor q{_ratio(ratio)} from costs (unservedRequest {_money(costs.unserved_request)},"
        f" replicaHour {_money(costs.replica_hour)}): over {format_duration(window)} a missing replica costs"
        f" {_money(under)} in unserved demand, an idle one {_money(over)}{note}"
    )
    # A ratio that rounds to 1 (a dropped request priced astronomically above a replica-hour) is sized at the
    # largest level below 1 the tail can read, never at an infinite quantile.
    q = min(ratio, 1.0 - 1e-12)
    return Headroom(quantile=q, source="newsvendor", ratio=ratio, extrapolated=extrapolated, text=text)
