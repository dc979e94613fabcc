"""The ScalingPolicy/TrafficEvent models and the CRDs generated from them agree, and bad specs name the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from controller.core.policy import Policy
from controller.operator.crds import all_crds, openapi_schema, scaling_policy_crd, traffic_event_crd
from controller.operator.resources import (
    LabelSelector,
    ScalingPolicySpec,
    ScalingPolicyStatus,
    TrafficEventSpec,
    parse_event,
    parse_policy_spec,
)

BASE = {"targetRef": {"kind": "Deployment", "name": "slots-api"}, "metric": {"promql": "up"}, "capacityPerReplica": 50}


def test_spec_extends_the_core_policy() -> None:
    spec = parse_policy_spec({**BASE, "leadTime": "10m", "mode": "ForecastOnly",
                              "databaseReplicas": {"targetRef": {"kind": "StatefulSet", "name": "pg"},
                                                   "capacityPerReplica": 400, "lagQuery": "lag"}})
    assert isinstance(spec, Policy)
    policy = spec.to_policy()
    assert type(policy) is Policy and policy.lead_time == timedelta(minutes=10) and policy.mode == "ForecastOnly"
    assert policy.database_replicas is not None and policy.database_replicas.capacity_per_replica == 400
    assert set(Policy.model_fields) <= set(ScalingPolicySpec.model_fields)


def test_costs_reach_the_core_policy() -> None:
    spec = parse_policy_spec({**BASE, "costs": {"unservedRequest": 0.002, "replicaHour": 0.4}})
    costs = spec.to_policy().costs
    assert costs is not None and (costs.unserved_request, costs.replica_hour) == (0.002, 0.4)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"capacityPerReplica": 0}, "spec.capacityPerReplica"),
        ({"minReplicas": 5, "maxReplicas": 2}, "spec.maxReplicas"),
        ({"leadTime": "soon"}, "spec.leadTime"),
        ({"headroomQuantile": 0.97}, "spec.headroomQuantile"),
        ({"mode": "Aggressive"}, "spec.mode"),
        ({"targetRef": {"kind": "Pod", "name": "x"}}, "spec.targetRef.kind"),
        ({"targetRef": {"kind": "Deployment", "name": "Bad_Name"}}, "spec.targetRef.name"),
        ({"metric": {}}, "spec.metric"),
        ({"metric": {"promql": "up", "scrape": {"metric": "m"}}}, "spec.metric"),
        ({"metric": {"scrape": {"url": "http://x/metrics", "metric": "m"}}}, "spec.metric.scrape.url"),
        ({"metric": {"scrape": {"metric": "m", "port": "HTTP"}}}, "spec.metric.scrape.port"),
        ({"metric": {"scrape": {"metric": "casino requests"}}}, "spec.metric.scrape.metric"),
        ({"targetRef": {"apiVersion": "v1", "kind": "ReplicationController", "name": "x"}},
         "spec.targetRef.apiVersion"),
        ({"targetRef": {"apiVersion": "postgresql.cnpg.io/v1", "kind": "cluster", "name": "x"}},
         "spec.targetRef.kind"),
        ({"forecast": {"step": "1h", "history": "1h"}}, "spec.forecast.history"),
        ({"eventSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
         "spec.eventSelector.matchExpressions.0.values"),
        ({"databaseReplicas": {"targetRef": {"kind": "StatefulSet", "name": "pg"}, "capacityPerReplica": 1,
                               "minReplicas": 3, "maxReplicas": 1}}, "spec.databaseReplicas.maxReplicas"),
        ({"replicas": 3}, "spec.replicas"),
        ({"costs": {"unservedRequest": 0, "replicaHour": 1}}, "spec.costs.unservedRequest"),
        ({"costs": {"unservedRequest": 0.01}}, "spec.costs.replicaHour"),
    ],
)
def test_bad_specs_name_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_policy_spec({**BASE, **patch})
    assert str(err.value).startswith(f"{field}:"), str(err.value)


def test_spec_must_be_an_object() -> None:
    with pytest.raises(ValueError, match=r"^spec: expected an object"):
        parse_policy_spec(None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "tournament", "start": "2026-11-27T20:00:00Z", "end": "2026-11-27T19:00:00Z"}, "spec.end"),
        ({"kind": "tournament", "start": "2026-11-27T20:00:00", "end": "2026-11-27T21:00:00Z"}, "spec.start"),
        ({"kind": "", "start": "2026-11-27T20:00:00Z", "end": "2026-11-27T21:00:00Z"}, "spec.kind"),
        ({"kind": "promo", "start": "2026-11-27T20:00:00Z", "end": "2026-11-27T21:00:00Z", "expectedLift": 0},
         "spec.expectedLift"),
    ],
)
def test_bad_traffic_events_name_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_event({"metadata": {"name": "ev"}, "spec": spec})
    assert str(err.value).startswith(f"TrafficEvent ev: {message}:"), str(err.value)


def test_traffic_event_becomes_a_forecasting_event() -> None:
    event = parse_event({"metadata": {"name": "friday-frenzy", "labels": {"app": "slots"}},
                         "spec": {"kind": "tournament", "start": "2026-11-27T21:00:00+01:00",
                                  "end": "2026-11-27T22:00:00+01:00", "expectedLift": 3}})
    assert event.name == "friday-frenzy" and event.start.isoformat() == "2026-11-27T20:00:00+00:00"
    assert event.expected_lift == 3 and event.labels == {"app": "slots"}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({"matchLabels": {"app": "slots"}}, {"app": "slots", "x": "y"}, True),
        ({"matchLabels": {"app": "slots"}}, {"app": "poker"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}, {"app": "b"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {"app": "a"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "x"}, False),
    ],
)
def test_label_selector(selector: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert LabelSelector.model_validate(selector).matches(labels) is matches


def _model_fields(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


@pytest.mark.parametrize(("model", "crd", "section"), [
    (ScalingPolicySpec, scaling_policy_crd, "spec"),
    (ScalingPolicyStatus, scaling_policy_crd, "status"),
    (TrafficEventSpec, traffic_event_crd, "spec"),
])
def test_crd_schema_has_exactly_the_model_fields(model: type[BaseModel], crd: Any, section: str) -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][section]
    assert set(schema["properties"]) == _model_fields(model)
    required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
    assert set(schema.get("required", [])) == required


def _walk(node: Any, path: str = "") -> Any:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def test_crds_are_structural() -> None:
    for crd in all_crds().values():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(schema):
            if isinstance(node, dict):
                assert not {"$ref", "anyOf", "oneOf", "allOf", "title", "$defs"} & set(node), path
                for name, sub in (node.get("properties") or {}).items():
                    assert "type" in sub, f"{path}.properties.{name} has no type"
                assert node.get("additionalProperties") is not False, path


def test_crd_defaults_load_to_the_model_defaults() -> None:
    """A spec holding every default the CRD schema would fill in loads to the model's defaults."""
    schema = openapi_schema(ScalingPolicySpec)
    defaults = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    assert defaults["leadTime"] == "2m" and defaults["syncPeriod"] == "15s"
    assert parse_policy_spec({**BASE, **defaults}) == parse_policy_spec(BASE)


def test_printer_columns_and_status_subresource() -> None:
    version = scaling_policy_crd()["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Target"] == ".spec.targetRef.name" and columns["Mode"] == ".spec.mode"
    assert columns["Current"] == ".status.currentReplicas" and columns["Desired"] == ".status.desiredReplicas"
    assert columns["Next-Peak"] == ".status.nextPeak.summary"
    assert version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    conditions = status["conditions"]["items"]["properties"]
    assert {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(conditions)
