"""KubernetesEventRecorder on the emulator: every Event is created, whatever else records at that instant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.operator.kube import KubernetesEventRecorder
from tests.kube.fixtures import NAMESPACE


def test_two_recorders_at_one_instant_both_create_their_events(kube: Any, api: Any) -> None:
    # The operator has one recorder for scale Events and one for incident Events; in one cycle both may
    # write about the same policy at the same (cycle) time: a scale-down and a resolved incident.
    emu, _ = kube
    at = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    scales, incidents = (KubernetesEventRecorder(api, instance="pitboss-0") for _ in range(2))
    for recorder, reason in ((scales, "ScaledDown"), (incidents, "MetricsUnavailableResolved"),
                             (scales, "ScaledUp"), (incidents, "ForecastMissResolved")):
        recorder.record(namespace=NAMESPACE, kind="ScalingPolicy", name="slots", event_type="Normal",
                        reason=reason, message=reason, at=at)
    events = emu.list("v1", "events", NAMESPACE)
    assert sorted(e["reason"] for e in events) == ["ForecastMissResolved", "MetricsUnavailableResolved",
                                                  "ScaledDown", "ScaledUp"]
    assert len({e["metadata"]["name"] for e in events}) == 4
