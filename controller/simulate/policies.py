"""The simulator's policies by name: hpa, keda-cron, holt-winters, pitboss, oracle, and the baselines.

One place that turns ``--policies a,b,c`` into Scalers with their settings.
The forecasting baselines (``mstl``, ``autoets``, ``prophet``, ``gbm``:
``forecasting.models.baselines``) run through the same ``decide()`` as
pitboss, so they compare on decisions, not only on forecast error; they
need the ``bench`` extra and are registered only when asked for. Called by
the CLI and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from controller.simulate.costs import SimCosts
from controller.simulate.engine import Scaler
from controller.simulate.hpa import Hpa, KedaCron
from controller.simulate.predictive import Oracle, Predictive
from forecasting import registry

POLICY_NAMES: tuple[str, ...] = ("hpa", "keda-cron", "holt-winters", "pitboss", "oracle")
# Forecasting baselines (optional dependencies); True: the model reads the event calendar.
BASELINE_POLICIES: dict[str, bool] = {"mstl": False, "autoets": False, "prophet": True, "gbm": True}
KNOWN_POLICIES: tuple[str, ...] = (*POLICY_NAMES, *BASELINE_POLICIES)


@dataclass(frozen=True)
class PolicySettings:
    """Knobs of the simulated policies (defaults: the issue's; all documented in docs/simulate.md)."""

    hpa_target: float = 0.8  # HPA target utilization of capacityPerReplica
    keda_min: int | None = None  # minReplicas during events; None: derived from past events of the kind
    headroom_quantile: float = 0.95  # decide()'s forecast quantile for holt-winters and pitboss
    refit_every: timedelta | None = None  # None: hourly, or every 24 steps when steps are longer than 2.5 min
    max_history: int = 21 * 1440  # steps of history each refit sees (21 days of 1-min: see docs/simulate.md)
    pitboss_model: str = "calendar"
    holt_winters_model: str = "holt-winters"
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per model name
    scale_down: dict[str, Any] = field(default_factory=dict)  # Policy.scaleDown for the predictive ones
    costs: SimCosts | None = None  # set: every forecasting policy sizes at the newsvendor quantile
    baseline_refit_every: timedelta | None = None  # the baselines' refit interval; None: as refit_every
    baseline_max_history: int | None = None  # steps each baseline refit sees; None: max_history


def parse_policies(text: str) -> list[str]:
    """``hpa,pitboss`` -> names; ValueError naming --policies on an unknown or repeated one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"policies: expected a comma-separated list of {', '.join(KNOWN_POLICIES)}")
    for name in names:
        if name not in KNOWN_POLICIES:
            raise ValueError(f"policies: unknown policy {name!r}; expected some of {', '.join(KNOWN_POLICIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"policies: a policy is listed twice in {text!r}")
    return names


def build(name: str, settings: PolicySettings | None = None) -> Scaler:
    """A fresh Scaler for ``name``."""
    s = settings or PolicySettings()
    if name == "hpa":
        return Hpa(target_utilization=s.hpa_target)
    if name == "keda-cron":
        return KedaCron(target_utilization=s.hpa_target, event_min_replicas=s.keda_min)
    if name in ("holt-winters", "pitboss"):
        model = s.holt_winters_model if name == "holt-winters" else s.pitboss_model
        if model not in registry.MODELS:  # when the policy is built, not at its first refit
            field = "holt_winters_model" if name == "holt-winters" else "pitboss_model"
            raise ValueError(f"{field}: unknown model {model!r}; expected one of {', '.join(registry.names())}")
        return Predictive(
            name,
            model,
            use_events=name == "pitboss",
            refit_every=s.refit_every,
            max_history=s.max_history,
            headroom_quantile=s.headroom_quantile,
            scale_down=s.scale_down,
            model_params=s.model_params.get(model),
            costs=s.costs,
        )
    if name in BASELINE_POLICIES:
        try:
            registry.register_baselines((name,))
        except ValueError as exc:
            raise ValueError(f"policies: {str(exc).removeprefix('model: ')}") from None
        return Predictive(
            name,
            name,
            use_events=BASELINE_POLICIES[name],
            refit_every=s.baseline_refit_every or s.refit_every,
            max_history=s.baseline_max_history or s.max_history,
            headroom_quantile=s.headroom_quantile,
            scale_down=s.scale_down,
            model_params=s.model_params.get(name),
            costs=s.costs,
        )
    if name == "oracle":
        return Oracle()
    raise ValueError(f"policies: unknown policy {name!r}; expected some of {', '.join(KNOWN_POLICIES)}")
