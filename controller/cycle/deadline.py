"""How much of a cycle may go to forecast fits: a deadline for the whole cycle, not a fixed fit budget.

A cycle over many policies fits some of them (first fits, hourly refits,
a changed spec or event calendar) and decides, writes and records every one.
A fixed fit budget (``FitBudget``: ``--fit-budget``) caps the fitting alone,
so a cycle whose other work grew (more policies, a slower API) overran the
goal anyway, and one with little else to do fitted less than it could.
``CycleDeadline`` bounds the cycle instead (``limit``: half the sync period in
``pitboss operator run``, issue 14): a fit runs while

    elapsed + expected fit + expected rest of the cycle <= limit

where the expected fit is an EWMA of recent fits' seconds plus two mean
deviations (RFC 6298's estimator: a fit is planned at what a slow one costs,
so the last fit of a cycle rarely overruns it) and the rest is
the non-fit work still ahead (decisions, writes, records): the non-fit
seconds per policy (the larger of an EWMA over past cycles plus two mean
deviations, and this cycle's mean so far) times the policies still to come;
before any cycle was measured
it is assumed to take all the limit leaves after the floor. Two guarantees hold
whatever the estimates say: the first fit of a cycle always runs, and fits
run while this cycle has fitted less than ``floor`` (a tenth of the limit by
default), so fitting always progresses, also when the rest alone exceeds the
limit. A policy whose fit does not run keeps the forecast it has (or waits
for its first), as with the fixed budget (``controller.cycle.feed``).

``may_fit`` is the pure rule (table-driven tests); the classes keep the
estimates. Time is passed in (seconds on any monotonic clock): this package
reads no clock. Used by the operator's ``ForecastCache``
(``controller.operator.forecasts``), which ``controller.operator.app`` wires.
"""

from __future__ import annotations

from dataclasses import dataclass

FLOOR_SHARE = 0.1  # of the limit: the fitting a cycle always gets
ALPHA = 0.3  # EWMA weight of the newest sample
DEVIATIONS = 2  # a fit is planned at its mean cost plus this many mean deviations


def may_fit(*, elapsed: float, fitted: float, fits: int, fit_cost: float, rest: float, limit: float,
            floor: float) -> bool:
    """Whether the next fit of a cycle runs.

    ``elapsed``: seconds since the cycle began; ``fitted``: seconds it spent fitting so far, in ``fits``
    fits; ``fit_cost``: the expected seconds of this fit; ``rest``: the expected seconds of the cycle's
    non-fit work still ahead. The first fit always runs, and fits run while ``fitted`` is under ``floor``.
    """
    if fits == 0 or fitted < floor:
        return True
    return elapsed + fit_cost + rest <= limit


@dataclass
class Ewma:
    """An exponentially weighted moving average and mean deviation (None until the first sample).

    ``high`` is the mean plus ``DEVIATIONS`` mean deviations: Jacobson and Karels' retransmission timeout
    (RFC 6298), on fit seconds and on the rest's seconds per policy, so a cycle plans for a slow fit and
    a heavy rest, not average ones.
    """

    alpha: float = ALPHA
    value: float | None = None
    deviation: float = 0.0

    def add(self, sample: float) -> None:
        if self.value is None:
            self.value, self.deviation = sample, sample / 2
            return
        self.deviation = self.alpha * abs(sample - self.value) + (1 - self.alpha) * self.deviation
        self.value = self.alpha * sample + (1 - self.alpha) * self.value

    @property
    def high(self) -> float | None:
        return None if self.value is None else self.value + DEVIATIONS * self.deviation


class FitBudget:
    """The fixed rule (``--fit-budget``): fits run until a cycle has spent ``seconds`` fitting (the first always)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fitted = 0.0
        self.fits = 0

    def start(self, now: float, policies: int = 0) -> None:
        self.fitted, self.fits = 0.0, 0

    def next_policy(self) -> None:
        """A policy of the cycle begins (the fixed rule does not count them)."""

    def may_fit(self, now: float) -> bool:
        return self.fits == 0 or self.fitted < self.seconds

    def fitted_one(self, seconds: float) -> None:
        self.fitted += seconds
        self.fits += 1

    def end(self, now: float) -> None:
        """The cycle ended (nothing to learn)."""


class CycleDeadline:
    """Fits run while the cycle, its next fit and its expected rest fit in ``limit`` seconds (module docstring)."""

    def __init__(self, limit: float, *, floor: float | None = None, alpha: float = ALPHA) -> None:
        if limit <= 0:
            raise ValueError(f"the cycle deadline must be positive, got {limit}")
        self.limit = limit
        self.floor = limit * FLOOR_SHARE if floor is None else floor
        self.fit_cost = Ewma(alpha)  # seconds per fit
        self.rest_per_policy = Ewma(alpha)  # non-fit seconds per policy, over whole cycles
        self._began = 0.0
        self._policies = 0  # in this cycle
        self._begun = 0  # policies of this cycle begun so far
        self.fitted = 0.0  # seconds this cycle spent fitting
        self.fits = 0

    def start(self, now: float, policies: int = 0) -> None:
        """A cycle over ``policies`` policies begins at ``now``."""
        self._began, self._policies, self._begun = now, policies, 0
        self.fitted, self.fits = 0.0, 0

    def next_policy(self) -> None:
        """The next policy of the cycle begins (what the rest still ahead is counted in)."""
        self._begun += 1

    def rest(self, now: float) -> float:
        """The expected seconds of non-fit work still ahead in this cycle (the current policy's included).

        Per policy: the larger of the EWMA over past cycles plus two mean deviations (a step's first cycle,
        which writes more statuses than the others, is within that) and this cycle's own mean so far.
        Before any cycle was
        measured (the first after a start or a takeover) the rest is unknown and assumed to take all the
        limit leaves after the floor: the first cycle fits the floor's worth, the next on the estimates.
        """
        learnt = self.rest_per_policy.high
        if learnt is None:
            return max(0.0, self.limit - self.floor)
        done = self._begun - 1
        running = (now - self._began - self.fitted) / done if done > 0 else 0.0
        return max(learnt, running, 0.0) * max(0, self._policies - self._begun + 1)

    def may_fit(self, now: float) -> bool:
        """Whether a fit due now runs (``may_fit``, with this cycle's figures)."""
        return may_fit(elapsed=now - self._began, fitted=self.fitted, fits=self.fits,
                       fit_cost=self.fit_cost.high or 0.0, rest=self.rest(now), limit=self.limit,
                       floor=self.floor)

    def fitted_one(self, seconds: float) -> None:
        """A fit ran for ``seconds``."""
        self.fitted += seconds
        self.fits += 1
        self.fit_cost.add(seconds)

    def end(self, now: float) -> None:
        """The cycle ended at ``now``: learn its non-fit seconds per policy."""
        if self._policies > 0:
            self.rest_per_policy.add(max(0.0, now - self._began - self.fitted) / self._policies)


__all__ = ["ALPHA", "DEVIATIONS", "FLOOR_SHARE", "CycleDeadline", "Ewma", "FitBudget", "may_fit"]
