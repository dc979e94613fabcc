"""Fits spread over cycles: once a cycle has spent its fit budget, the other policies decide without waiting.

The production wiring (``build_operator``, what ``pitboss operator run`` builds) over the official client
against the strict emulator, on a fake clock, with the real ``calendar`` model. The budget here is one
microsecond, so each cycle fits exactly one policy (the first fit of a cycle always runs).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controller.operator.app import build_operator
from controller.operator.clock import FakeClock
from tests.controller.operator.harness import EVENT_START, TraceDemand, policy_spec, tournament_specs
from tests.kube.fixtures import (
    NAMESPACE,
    SYSTEM_NAMESPACE,
    api_client_for,
    create,
    deployment,
    scaling_policy,
    traffic_event,
)

SYNC = timedelta(seconds=15)
NAMES = ("slots-a", "slots-b", "slots-c")


def _forecast_ready(emu: Any, name: str) -> dict[str, Any]:
    obj = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, name)
    return next(c for c in obj["status"]["conditions"] if c["type"] == "ForecastReady")


def test_fits_wait_for_later_cycles_and_no_policy_waits_for_a_fit(kube: Any, api: Any) -> None:
    emu, url = kube
    for name in NAMES:
        create(api, deployment(f"{name}-api", 4))
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-api"}
        create(api, scaling_policy(name, policy_spec(targetRef=target)))
    for name, event in tournament_specs():
        create(api, traffic_event(name, event, labels={"service": "slots"}))
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = build_operator(api_client_for(url), namespace=None, demand=TraceDemand(), clock=clock,
                        leader_election=False, lease_namespace=SYSTEM_NAMESPACE,
                        fit_budget=timedelta(microseconds=1))
    seen = []
    for _ in range(4):
        report = op.loop.step()
        assert report is not None and len(report.outcomes) == 3  # every policy decided in every cycle
        assert not any(o.error for o in report.outcomes), report.outcomes
        ready = {n: _forecast_ready(emu, n) for n in NAMES}
        seen.append((report.fits, report.deferred_fits, sum(c["status"] == "True" for c in ready.values())))
        waiting = [c for c in ready.values() if c["status"] == "False"]
        assert all("fit budget" in c["message"] for c in waiting), waiting
        clock.advance(SYNC)
    assert seen == [(1, 2, 1), (1, 1, 2), (1, 0, 3), (0, 0, 3)]

    # An hour on, every refit is due by age in the same cycle: one refits, the others keep (and update)
    # the forecast they have, so none of them is without a forecast.
    clock.advance(timedelta(hours=1))
    report = op.loop.step()
    assert report is not None and (report.fits, report.deferred_fits) == (1, 2) and report.updates == 2
    assert all(_forecast_ready(emu, n)["status"] == "True" for n in NAMES)
    clock.advance(timedelta(minutes=1))  # the next step: the next of them refits
    report = op.loop.step()
    assert report is not None and (report.fits, report.deferred_fits) == (1, 1)
