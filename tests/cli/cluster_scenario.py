"""A cluster the SRE commands read: the strict emulator, run by the real operator on a fake clock.

``run_scenario`` creates what a user applies (the slots-api Deployment, the
``slots`` policy selecting the tournaments, a ``poker`` policy whose demand
source is down) and runs the real reconcile loop (calendar forecasts,
``decide``, incidents as Kubernetes Events through the official client)
from 12 to 9 minutes before the friday-frenzy tournament, so the status,
``status.decisions`` and the Events hold a real pre-scale and a real
incident. Used by tests/cli/test_status_cmd.py and test_explain_cmd.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from controller.operator.clock import FakeClock
from tests.controller.operator.harness import (
    EVENT_START,
    TraceDemand,
    make_incident_operator,
    policy_spec,
    tournament_specs,
)
from tests.kube.fixtures import create, deployment, scaling_policy, traffic_event

SYNC = timedelta(seconds=15)
NOW = EVENT_START - timedelta(minutes=9)  # where the scenario's clock stops


def run_scenario(api: Any, url: str, tmp_path: Path, *, until: Any = NOW) -> FakeClock:
    """Apply the objects and run the operator cycle by cycle until ``until``; returns the clock."""
    create(api, deployment("slots-api", 4))
    create(api, deployment("poker-api", 2))
    create(api, scaling_policy("slots", policy_spec()))
    create(api, scaling_policy("poker", policy_spec(
        targetRef={"kind": "Deployment", "name": "poker-api"},
        eventSelector={"matchLabels": {"service": "poker"}})))
    for name, spec in tournament_specs():
        create(api, traffic_event(name, spec, labels={"service": "slots"}))
    demand = TraceDemand()
    demand.by_policy["poker"] = type(demand.default)(demand.default.inner)
    demand.by_policy["poker"].down = True  # its Prometheus is unreachable: MetricsUnavailable
    clock = FakeClock(EVENT_START - timedelta(minutes=12))
    op = make_incident_operator(url, clock, demand, tmp_path / "incidents.db", background=False)
    try:
        while clock.now() <= until:
            op.loop.step()
            clock.advance(SYNC)
    finally:
        op.close()
    return clock
