"""Scaling limits: small pure functions over plain numbers and timestamps.

The rules ``decide`` composes, one function each, so each can be tested on a
table: sizing demand to replicas, clamping to [min, max], the HPA-style
scale-down stabilization window and the bounded scale-down step. Called by
``controller.core.decide``, ``controller.core.database`` and the simulator's
HPA model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

# Demand that is a hair over a whole number of replicas (float noise) does not
# buy a whole extra replica.
_EPS = 1e-9


def replicas_for(demand: float, capacity_per_replica: float) -> int:
    """The fewest replicas that serve ``demand`` at ``capacity_per_replica`` each (>= 0)."""
    if capacity_per_replica <= 0:
        raise ValueError(f"capacityPerReplica: must be positive, got {capacity_per_replica}")
    if not math.isfinite(demand):
        raise ValueError(f"demand: expected a finite number, got {demand}")
    if demand <= 0:
        return 0
    return max(0, math.ceil(demand / capacity_per_replica - _EPS))


def clamp(replicas: int, min_replicas: int, max_replicas: int) -> tuple[int, bool]:
    """Clamp to [min, max]; the flag is True when ``replicas`` wanted more than max."""
    if max_replicas < min_replicas:
        raise ValueError(f"maxReplicas: must be >= minReplicas ({min_replicas}), got {max_replicas}")
    if replicas > max_replicas:
        return max_replicas, True
    return max(replicas, min_replicas), False


def stabilized(
    recommendation: int,
    history: Iterable[tuple[datetime, int]],
    now: datetime,
    window: timedelta,
) -> int:
    """The HPA's scale-down stabilization: the max recommendation within ``window`` before ``now``.

    ``history`` holds past (time, recommendation) pairs; the current
    ``recommendation`` always counts. Scale-ups are not delayed (the max of the
    window is never below the current recommendation).
    """
    if window <= timedelta(0):
        return recommendation
    cutoff = now - window
    best = recommendation
    for at, replicas in history:
        if cutoff <= at <= now and replicas > best:
            best = replicas
    return best


def scale_down_floor(current: int, max_step_percent: int) -> int:
    """The fewest replicas one scale-down step may leave from ``current`` (HPA Percent policy).

    Removes at most ``max_step_percent`` % of ``current``, rounding the kept
    replicas up (so 1 replica at 50 % stays 1, as the HPA does); 100 % allows 0.
    """
    if not 1 <= max_step_percent <= 100:
        raise ValueError(f"scaleDown.maxStepPercent: expected 1..100, got {max_step_percent}")
    if current <= 0:
        return 0
    return math.ceil(current * (100 - max_step_percent) / 100 - _EPS)


def bounded_scale_down(current: int, target: int, max_step_percent: int) -> tuple[int, bool]:
    """Move from ``current`` down toward ``target`` by at most one step; flag when the step held back."""
    if target >= current:
        return target, False
    floor = scale_down_floor(current, max_step_percent)
    if target < floor:
        return floor, True
    return target, False
