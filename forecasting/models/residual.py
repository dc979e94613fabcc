"""The calendar model's residual dynamics: what the calendar does not explain, as a state model.

Called by ``forecasting.models.calendar_fit`` after each fit. The log-demand
residuals of the calendar regression are modelled as a signal plus white
noise, and a steady-state Kalman filter tracks the signal:

* sub-daily steps: an AR(1) signal (coefficient ``phi`` from the ratio of the
  residuals' lag-2 and lag-1 autocorrelations), so a short horizon starts
  from the current level and decays to the calendar within hours;
* daily and coarser steps: the level of a multi-year series drifts (growth,
  a slow decline) and a year of history cannot tell that drift from the
  yearly cycle, so the signal is the sum of a local level (a random walk
  that does not decay) and the same AR(1) (weather, a busy week). Its three
  variances come from the autocovariances of the residuals' first
  differences at lags 0, 1 and 2 (method of moments).

``Dynamics`` holds the fitted parameters; ``ahead`` gives the forecast's
weights on the current state and the variance it adds per horizon step.
Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MLE_POINTS = 1_000  # the level's parameters come from the last 1,000 residuals (~3 years of daily data)
Z = {0.025: -1.96, 0.05: -1.645, 0.1: -1.2816, 0.5: 0.0, 0.9: 1.2816, 0.95: 1.645, 0.975: 1.96, 0.99: 2.326}


@dataclass(frozen=True)
class Dynamics:
    """Residual state model: state = (AR(1) signal[, local level]); observation = their sum + noise."""

    phi: float  # AR(1) coefficient of the short-lived signal
    innov: float  # AR(1) innovation variance per step
    level_innov: float  # random-walk innovation variance of the level per step (0: no level)
    noise: float  # white observation noise
    var: float  # residual variance (recent points)
    zq: dict[float, float]  # standardised residual quantiles, centred on the median

    @property
    def has_level(self) -> bool:
        return self.level_innov > 0

    @property
    def transition(self) -> np.ndarray:
        return np.diag([self.phi, 1.0]) if self.has_level else np.array([[self.phi]])

    @property
    def process(self) -> np.ndarray:
        return np.diag([self.innov, self.level_innov]) if self.has_level else np.array([[self.innov]])

    def initial(self) -> tuple[np.ndarray, np.ndarray]:
        """State mean and covariance before any residual: the AR(1)'s stationary spread, a wide level."""
        ar = self.innov / max(1e-12, 1 - self.phi**2)
        if self.has_level:
            return np.zeros(2), np.diag([ar, self.var])
        return np.zeros(1), np.array([[ar]])

    def ahead(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, var): the weights of the forecast on the state at each of the next ``horizon`` steps,
        and the process variance accumulated by then (observation noise included)."""
        h = np.arange(1, horizon + 1)
        decay = self.phi**h
        ar_var = self.innov * (h if self.phi >= 1 else (1 - self.phi ** (2 * h)) / max(1e-12, 1 - self.phi**2))
        var = self.noise + ar_var
        if not self.has_level:
            return decay[:, None], var
        return np.column_stack([decay, np.ones(horizon)]), var + self.level_innov * h


def _acov(x: np.ndarray, lag: int) -> float:
    a, b = (x, x) if lag == 0 else (x[:-lag], x[lag:])
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10:
        return 0.0
    return float(np.mean(a[ok] * b[ok]))


def calibrate(resid: np.ndarray, recent_points: int, *, local_level: bool) -> Dynamics:
    """Fit the residual dynamics to in-sample residuals (NaN = unobserved)."""
    finite = resid[np.isfinite(resid)]
    var = max(float(np.var(finite)) if finite.size > 1 else 0.0, 1e-8)
    if local_level:
        phi, sig, noise, level = _with_level_mle(resid)
    else:
        r1, r2 = _acov(resid, 1) / var, _acov(resid, 2) / var
        if r1 > 0.05 and r2 > 0:
            phi = min(0.9995, max(0.0, r2 / r1))
            signal = min(1.0, r1 / phi) if phi > 0 else 0.0
        else:
            phi, signal = 0.0, 0.0
        sig, noise, level = signal * var, var - signal * var, 0.0
    # Scale and tail shape from the recent residuals: a long history's calmer or stormier past
    # should not set today's interval width.
    recent = resid[-recent_points:]
    recent = recent[np.isfinite(recent)]
    if recent.size > 20:
        scale = max(float(np.var(recent)), 1e-8) / var
        var, sig, noise, level = var * scale, sig * scale, noise * scale, level * scale
        finite = recent
    noise = max(noise, 1e-10)
    std = finite / math.sqrt(var) if finite.size > 20 else None
    zq = {q: float(np.quantile(std, q)) if std is not None else z for q, z in Z.items()}
    centre = zq[0.5]
    return Dynamics(
        phi=phi,
        innov=sig * (1 - phi**2),
        level_innov=level,
        noise=noise,
        var=var,
        zq={q: v - centre for q, v in zq.items()},
    )


def _with_level(resid: np.ndarray) -> tuple[float, float, float, float]:
    """(phi, s, n, q) for level + AR(1) + noise: the AR(1)'s coefficient and stationary variance,
    the noise variance and the level's random-walk innovation variance.

    With d = the first differences: var(d) = q + 2 s (1 - phi) + 2 n, cov1(d) = -s (1 - phi)^2 - n,
    cov_k(d) = -s phi^(k-1) (1 - phi)^2 for k >= 2. So phi = cov3 / cov2, then s from cov2, n from
    cov1 and q from var(d); a pure random walk plus noise when the differences show no AR(1)."""
    d = np.diff(resid)
    v0, v1, v2, v3 = (_acov(d, k) for k in range(4))
    phi, s, n = 0.0, 0.0, max(0.0, -v1)
    if v2 < 0 and v3 < 0 and 0 < v3 / v2 < 1:
        phi = min(0.98, v3 / v2)
        s = -v2 / (phi * (1 - phi) ** 2)
        n = max(0.0, -v1 - s * (1 - phi) ** 2)
    q = v0 - 2 * s * (1 - phi) - 2 * n
    # A level that never moves cannot follow a drift the fit window did not show: keep a floor.
    q = max(q, 1e-3 * max(v0, 1e-12))
    return phi, s, n, q


def _with_level_mle(resid: np.ndarray) -> tuple[float, float, float, float]:
    """(phi, s, n, q) by maximum likelihood: statsmodels' UnobservedComponents (local level + AR(1))."""
    import warnings

    from statsmodels.tsa.statespace.structural import UnobservedComponents

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = UnobservedComponents(resid[-MLE_POINTS:], level="llevel", autoregressive=1).fit(disp=False)
    params = dict(zip(res.model.param_names, res.params, strict=True))
    phi = float(np.clip(params.get("ar.L1", 0.0), 0.0, 0.98))
    innov = float(params.get("sigma2.ar", 0.0))
    s = innov / max(1e-12, 1 - phi**2)
    return phi, s, float(params.get("sigma2.irregular", 0.0)), float(params.get("sigma2.level", 0.0))
