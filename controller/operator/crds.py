"""Generate the CustomResourceDefinitions from the pydantic resource models.

The one source of truth for the ScalingPolicy and TrafficEvent schemas is
``controller.operator.resources``; this module turns their JSON Schema into
Kubernetes structural OpenAPI v3 (refs inlined, nullable instead of
``anyOf null``, boolean exclusive bounds, durations as pattern-checked
strings, no titles). Called by ``pitboss operator crds`` (which writes
manifests/crds) and by the test that proves the committed files agree.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from controller.core.durations import format_duration
from controller.core.policy import HEADROOM_QUANTILES
from controller.operator.resources import (
    APPS_SCALE_KINDS,
    EVENT_PLURAL,
    GROUP,
    POLICY_PLURAL,
    VERSION,
    ScalingPolicySpec,
    ScalingPolicyStatus,
    TrafficEventSpec,
)
from forecasting import registry

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+$|^[0-9]+(\.[0-9]+)?$"
_DROP = {"title", "examples"}


class _K8sSchema(GenerateJsonSchema):
    """JSON Schema with durations as '10m'-style strings and defaults the loader reads back."""

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return {"type": "string", "pattern": DURATION_PATTERN}

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Rewrite one JSON Schema node into Kubernetes structural OpenAPI v3."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _structural({**target, **extra}, defs)
    out: dict[str, Any] = {}
    nullable = False
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "anyOf":
            branches = [b for b in value if b.get("type") != "null"]
            nullable = len(branches) < len(value)
            if len(branches) != 1:
                raise ValueError(f"schema: cannot make a structural schema of anyOf {value!r}")
            out.update(_structural(branches[0], defs))
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound], out[key] = value, True
        elif key == "additionalProperties" and value is False:
            continue  # structural schemas prune unknown fields instead
        elif key in ("properties",):
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    if nullable:
        out["nullable"] = True
        if out.get("default", 0) is None:
            del out["default"]
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model`` (camelCase field names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_K8sSchema)
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    _check_structural(schema, model.__name__)
    return schema


def _check_structural(node: dict[str, Any], path: str) -> None:
    if "type" not in node:
        raise ValueError(f"{path}: schema node has no type (not structural)")
    for name, sub in node.get("properties", {}).items():
        _check_structural(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        _check_structural(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        _check_structural(node["additionalProperties"], f"{path}{{}}")


def _policy_spec_schema() -> dict[str, Any]:
    """ScalingPolicySpec's schema plus the cross-field rules the API server can check itself."""
    schema = openapi_schema(ScalingPolicySpec)
    schema["properties"]["headroomQuantile"]["enum"] = list(HEADROOM_QUANTILES)
    # The built-in models (the optional baselines need libraries the operator image does not have).
    schema["properties"]["forecast"]["properties"]["model"]["enum"] = list(registry.BUILTIN)
    schema["x-kubernetes-validations"] = [
        {"rule": "self.maxReplicas >= self.minReplicas", "message": "maxReplicas: must be >= minReplicas"},
    ]
    apps = ", ".join(f"'{k}'" for k in APPS_SCALE_KINDS)
    target_rule = [{"rule": f"self.apiVersion != 'apps/v1' || self.kind in [{apps}]",
                    "message": f"kind: apps/v1 kinds with /scale are {', '.join(APPS_SCALE_KINDS)}"}]
    schema["properties"]["targetRef"]["x-kubernetes-validations"] = target_rule
    schema["properties"]["databaseReplicas"]["properties"]["targetRef"]["x-kubernetes-validations"] = target_rule
    return schema


def _crd(
    *,
    kind: str,
    plural: str,
    singular: str,
    short_names: list[str],
    spec: dict[str, Any],
    status: type[BaseModel] | None,
    columns: list[dict[str, Any]],
    description: str,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec,
    }
    if status is not None:
        properties["status"] = openapi_schema(status)
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": description,
                "required": ["spec"],
                "properties": properties,
            }
        },
        "additionalPrinterColumns": columns,
    }
    if status is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": short_names,
                "categories": ["pitboss"],
            },
            "versions": [version],
        },
    }


def _col(name: str, path: str, type_: str = "string", priority: int = 0, description: str = "") -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    return col


def scaling_policy_crd() -> dict[str, Any]:
    """The ScalingPolicy CRD (with status subresource and printer columns)."""
    return _crd(
        kind="ScalingPolicy",
        plural=POLICY_PLURAL,
        singular="scalingpolicy",
        short_names=["sp", "spol"],
        spec=_policy_spec_schema(),
        status=ScalingPolicyStatus,
        description="Pre-scales a Deployment or StatefulSet (and its database read replicas) ahead of forecast demand.",
        columns=[
            _col("Target", ".spec.targetRef.name", description="the scaled workload"),
            _col("Mode", ".spec.mode"),
            _col("Current", ".status.currentReplicas", "integer"),
            _col("Desired", ".status.desiredReplicas", "integer"),
            _col("Next-Peak", ".status.nextPeak.summary", description="forecast peak demand, replicas and time"),
            _col("Reason", ".status.lastDecision.reason", priority=1),
            _col("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


def traffic_event_crd() -> dict[str, Any]:
    """The TrafficEvent CRD (spec only: events are declarations, they have no status)."""
    return _crd(
        kind="TrafficEvent",
        plural=EVENT_PLURAL,
        singular="trafficevent",
        short_names=["te", "tev"],
        spec=openapi_schema(TrafficEventSpec),
        status=None,
        description="A known-in-advance traffic event (tournament, promotion); its labels select the policies.",
        columns=[
            _col("Kind", ".spec.kind"),
            _col("Start", ".spec.start"),
            _col("End", ".spec.end"),
            _col("Lift", ".spec.expectedLift", "number"),
        ],
    )


def all_crds() -> dict[str, dict[str, Any]]:
    """file name in manifests/crds -> CRD object."""
    return {
        f"{POLICY_PLURAL}.yaml": scaling_policy_crd(),
        f"{EVENT_PLURAL}.yaml": traffic_event_crd(),
    }


HEADER = (
    "# Generated by `pitboss operator crds --out manifests/crds` from controller/operator/resources.py:"
    " do not edit.\n"
)


def render(crd: dict[str, Any]) -> str:
    """One CRD as the YAML committed in manifests/crds."""
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=120)
