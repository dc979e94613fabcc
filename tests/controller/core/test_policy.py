"""The policy model validates on load, with messages that name the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from controller.core.policy import Policy


def test_camel_case_spec_loads() -> None:
    policy = Policy.model_validate(
        {
            "capacityPerReplica": 50,
            "minReplicas": 2,
            "maxReplicas": 40,
            "leadTime": "10m",
            "scaleDown": {"stabilizationWindow": "5m", "maxStepPercent": 25},
            "databaseReplicas": {"capacityPerReplica": 400, "readShare": 0.7, "leadTime": "30m"},
        }
    )
    assert policy.lead_time == timedelta(minutes=10)
    assert policy.scale_down.max_step_percent == 25
    assert policy.database_replicas is not None
    assert policy.database_replicas.read_share == 0.7
    assert policy.mode == "Active"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"capacityPerReplica": 0}, "capacityPerReplica"),
        ({"capacityPerReplica": 10, "minReplicas": 5, "maxReplicas": 2}, "maxReplicas"),
        ({"capacityPerReplica": 10, "leadTime": "soon"}, "leadTime"),
        ({"capacityPerReplica": 10, "headroomQuantile": 0.97}, "headroomQuantile"),
        ({"capacityPerReplica": 10, "mode": "Aggressive"}, "mode"),
        ({"capacityPerReplica": 10, "scaleDown": {"maxStepPercent": 0}}, "maxStepPercent"),
        ({"capacityPerReplica": 10, "replicas": 3}, "replicas"),
    ],
)
def test_bad_spec_names_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Policy.model_validate(spec)
    assert field in str(info.value)
