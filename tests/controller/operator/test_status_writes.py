"""Volatile-only status changes wait for the policy's turn (at most ``--status-max-age``); material ones do not.

``status.material`` is a table; the turns (``status_writes.phase``, ``turn_passed``) are checked over
1,000 uids; then the production wiring (``build_operator``, its default max age of four sync periods)
over the official client against the strict emulator, on a fake clock, with the real calendar model.
"""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from controller.operator import status as st
from controller.operator.app import build_operator
from controller.operator.clock import FakeClock
from controller.operator.status_writes import phase, turn_passed
from tests.controller.operator.harness import EVENT_START, TraceDemand, policy_spec
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, scaling_policy

SYNC = timedelta(seconds=15)
MAX_AGE = 4 * SYNC
G, V, P = "pitboss.dev", "v1alpha1", "scalingpolicies"

STATUS: dict[str, Any] = {
    "observedGeneration": 1, "mode": "Active", "currentReplicas": 4, "readyReplicas": 4, "desiredReplicas": 4,
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "ForecastPeak", "observedGeneration": 1,
         "message": "forecast p95 peak 1237 req/s at 13:45 needs 13", "lastTransitionTime": "2026-11-27T18:00:00Z"},
        {"type": "ForecastReady", "status": "True", "reason": "ForecastOK", "observedGeneration": 1,
         "message": "calendar: 2 event(s) known", "lastTransitionTime": "2026-11-27T18:00:00Z"},
        {"type": "MetricsAvailable", "status": "True", "reason": "MetricsOK", "observedGeneration": 1,
         "message": "demand now 1237/s", "lastTransitionTime": "2026-11-27T18:00:00Z"},
    ],
    "lastDecision": {"time": "2026-11-27T18:00:15Z", "reason": "ForecastPeak", "desiredReplicas": 13,
                     "message": "forecast p95 peak 1237 req/s at 13:45 needs 13"},
    "nextPeak": {"time": "2026-11-27T20:10:00Z", "demand": 1237.0, "replicas": 13, "summary": "1237/s -> 13"},
    "recommendations": [{"time": "2026-11-27T18:00:00Z", "replicas": 13}],
}


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(STATUS)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "same"),
    [
        (("conditions", 0, "message"), "forecast p95 peak 1301.5 req/s at 13:46 needs 14", True),
        (("lastDecision", "message"), "forecast p95 peak 1301.5 req/s at 13:46 needs 14", True),
        (("lastDecision", "time"), "2026-11-27T18:00:30Z", True),
        (("conditions", 0, "lastTransitionTime"), "2026-11-27T18:00:30Z", True),
        (("nextPeak", "time"), "2026-11-27T20:11:00Z", True),
        (("nextPeak", "demand"), 1301.5, True),
        (("nextPeak", "summary"), "1301/s -> 13", True),
        (("nextPeak", "replicas"), 14, True),
        (("nextPeak",), None, False),
        (("lastDecision", "desiredReplicas"), 14, False),
        (("lastDecision", "reason"), "Holding", False),
        (("conditions", 0, "status"), "False", False),
        (("conditions", 0, "reason"), "Holding", False),
        (("conditions", 1, "message"), "calendar: 2 event(s) known; deciding on the previous forecast", False),
        (("conditions", 1, "message"), "calendar: 3 event(s) known", False),  # news, not a cycle's figure
        (("conditions", 2, "message"), "demand now 1301/s", True),
        (("currentReplicas",), 5, False),
        (("observedGeneration",), 2, False),
        (("openIncidents",), [{"id": "x", "alertname": "MetricsUnavailable"}], False),
        (("recommendations",), [{"time": "2026-11-27T18:00:00Z", "replicas": 14}], False),
    ],
)
def test_material(path: tuple[Any, ...], value: Any, same: bool) -> None:
    assert (st.material(_with(path, value)) == st.material(STATUS)) is same


def test_each_policys_turn_comes_once_a_window_and_the_turns_spread_evenly() -> None:
    uids = [f"uid-{i:04d}" for i in range(1000)]
    t0 = datetime(2026, 11, 27, 18, 0, 7, tzinfo=UTC)
    per_cycle = Counter[int]()
    for uid in uids:
        offset = phase(uid, MAX_AGE)
        assert timedelta(0) <= offset < MAX_AGE
        last = t0
        turns = []
        for c in range(1, 9):  # two windows of 15 s cycles
            now = t0 + c * SYNC
            if turn_passed(last, now, MAX_AGE, offset):
                turns.append(c)
                per_cycle[c] += 1
                last = now
        assert len([c for c in turns if c <= 4]) == 1 and len([c for c in turns if c > 4]) == 1, (uid, turns)
    assert all(200 <= per_cycle[c] <= 300 for c in range(1, 9)), per_cycle  # ~250 a cycle, not 1,000 in one


def _statuses(emu: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    return {n: emu.get(f"{G}/{V}", P, NAMESPACE, n)["status"] for n in names}


def _fleet(kube: Any, api: Any, n: int = 8) -> tuple[Any, str, list[str]]:
    emu, url = kube
    names = [f"slots-{i}" for i in range(n)]
    for name in names:
        create(api, deployment(f"{name}-api", 4))
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-api"}
        create(api, scaling_policy(name, policy_spec(targetRef=target)))
    return emu, url, names


def test_volatile_changes_wait_for_their_turn_and_material_ones_are_written_at_once(kube: Any, api: Any) -> None:
    emu, url, names = _fleet(kube, api)
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = build_operator(api_client_for(url), namespace=NAMESPACE, demand=TraceDemand(), clock=clock,
                        sync_period=SYNC, leader_election=False,
                        fit_budget=timedelta(minutes=10))  # every policy fitted in the first cycle
    try:
        report = op.loop.step()
        assert report is not None and (report.status_writes, report.status_skipped) == (8, 0)  # all new
        written_at = dict.fromkeys(names, clock.now())
        shown = _statuses(emu, names)
        counts = []
        for _ in range(8):
            clock.advance(SYNC)
            report = op.loop.step()
            assert report is not None and not [o.error for o in report.outcomes if o.error]
            counts.append((report.status_writes, report.status_skipped))
            now_shown = _statuses(emu, names)
            for name in names:
                if now_shown[name] != shown[name]:
                    written_at[name] = clock.now()
                # no status shown is older than the max age (plus the cycle that found its turn)
                assert clock.now() - written_at[name] <= MAX_AGE, (name, counts)
            shown = now_shown
        assert sum(s for _, s in counts) > 0, counts  # volatile-only changes were held back
        assert op.metrics.status_writes.labels("skipped")._value.get() == sum(s for _, s in counts)

        # A material change (a spec edit: a new generation and minReplicas) is written in its cycle.
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            G, V, NAMESPACE, P, names[0], {"spec": {"minReplicas": 6}}, _content_type="application/merge-patch+json")
        clock.advance(SYNC)
        op.loop.step()
        status = emu.get(f"{G}/{V}", P, NAMESPACE, names[0])["status"]
        assert status["observedGeneration"] == 2 and status["desiredReplicas"] >= 6
    finally:
        op.close()


def test_a_max_age_of_zero_writes_every_change(kube: Any, api: Any) -> None:
    _emu, url, names = _fleet(kube, api, 4)
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = build_operator(api_client_for(url), namespace=NAMESPACE, demand=TraceDemand(), clock=clock,
                        sync_period=SYNC, leader_election=False, status_max_age=timedelta(0))
    try:
        skipped, writes = 0, 0
        for _ in range(6):
            report = op.loop.step()
            assert report is not None
            skipped += report.status_skipped
            writes += report.status_writes
            clock.advance(SYNC)
        assert skipped == 0 and writes > len(names)
    finally:
        op.close()


def test_a_new_policys_first_status_waits_for_the_next_cycle_only_when_the_cycle_is_late() -> None:
    from controller.operator.fakes import InMemoryPolicyStore
    from controller.operator.report import Timings
    from controller.operator.status_writes import StatusWriter
    from controller.telemetry.metrics import OperatorMetrics

    store = InMemoryPolicyStore()
    new = store.add_policy(NAMESPACE, "new", {})
    known = store.add_policy(NAMESPACE, "known", {})
    store.write_status(known, STATUS)
    known = store.policies[(NAMESPACE, "known")]
    store.status_writes.clear()
    timings = Timings()
    writer = StatusWriter(store, timings, OperatorMetrics(), MAX_AGE)
    now = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    clock = [0.0]
    writer._timer = lambda: clock[0]
    writer.latency.add(0.2)  # PATCHes of 0.2 s: the pool drains in 0.6 s

    writer.start_cycle(0.0, 7.5)
    clock[0] = 6.8  # 6.8 + 0.6 < 7.5: not late
    assert not writer.late()
    clock[0] = 7.0  # 7.0 + 0.6 >= 7.5: late
    assert writer.late()
    assert writer.write(new, STATUS, now) == "skipped"  # the first status waits
    changed = _with(("currentReplicas",), 5)
    assert writer.write(known, changed, now) == "written"  # a material change of a known policy does not
    assert [name for _, name, _ in store.status_writes] == ["known"]

    writer.start_cycle(100.0, 7.5)  # the next cycle, on time: the first status is written
    clock[0] = 100.5
    assert writer.write(new, STATUS, now) == "written"
    writer.start_cycle(None, None)  # between cycles (a lone reconcile) nothing is late
    assert not writer.late()
    assert (timings.report.status_writes, timings.report.status_skipped) == (2, 1)
