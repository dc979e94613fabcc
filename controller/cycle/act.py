"""Act: write the replicas a decision asks for, once, safely, the same way in every shell.

``safeguarded`` is the belt and braces on top of ``decide``: never scale down
without metrics. ``write_replicas`` patches the target with the
resourceVersion it read; on a 409 (``ScaleConflict``: someone else changed
the workload) it reads the target again and asks ``desired_for(fresh)``,
which decides again from the fresh state, so a concurrent human edit is
respected and never overwritten by the count computed from the stale read.
Nothing is written when the fresh decision is the fresh count. Called by
``controller.cycle.run``'s ``act`` phase (every shell's writes, the operator's
database replicas included).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

from controller.core.decision import Decision
from controller.targets.base import ScaleConflict, ScaleState, ScaleTarget, TargetKey

log = logging.getLogger(__name__)
CONFLICT_RETRIES = 3


def safeguarded(decision: Decision, current: int) -> int:
    """The replicas to write for ``decision``: its desired count, but never below ``current`` without metrics."""
    desired = decision.desired_replicas
    if decision.metrics_available is False and desired < current:
        return current
    return desired


def write_replicas(
    target: ScaleTarget, key: TargetKey, scale: ScaleState, desired_for: Callable[[ScaleState | None], int], *,
    retries: int = CONFLICT_RETRIES, timed: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
) -> tuple[ScaleState, bool]:
    """Set ``key`` to ``desired_for(None)`` from the read ``scale``: (scale after, written?).

    ``timed`` wraps every call to the target (the operator measures its API time with it).
    """
    desired = desired_for(None)
    for attempt in range(retries):
        if desired == scale.replicas:
            return scale, False
        try:
            with timed():
                result = target.set_replicas(key, desired, scale.resource_version)
            return result, True
        except ScaleConflict:
            log.info("%s: 409 on attempt %d, re-reading the scale and deciding again", key, attempt + 1)
            with timed():
                scale = target.get_scale(key)
            desired = desired_for(scale)
    raise ScaleConflict(f"{key}: still conflicting after {retries} attempts")


__all__ = ["CONFLICT_RETRIES", "safeguarded", "write_replicas"]
