"""Validate objects against a CRD's openAPIV3Schema, as the API server does on create and update.

Kubernetes' OpenAPI v3 flavour is turned into JSON Schema (``nullable``,
boolean ``exclusiveMinimum``/``exclusiveMaximum``, ``x-kubernetes-*`` keys
dropped: CEL rules are not evaluated here) and checked with jsonschema,
``date-time`` included. Used by the strict emulator (422 Invalid) and by
tests/manifests/test_kustomize.py (the example custom resources).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jsonschema

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339 with a zone, as the API server checks format: date-time."""
    if not isinstance(value, str) or "T" not in value.upper():
        return False
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI v3 (Kubernetes flavour) -> JSON Schema."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes") or key in ("nullable", "exclusiveMinimum", "exclusiveMaximum"):
            continue
        if key in ("minimum", "maximum") and node.get("exclusiveM" + key[1:]) is True:
            out["exclusiveM" + key[1:]] = value
            continue
        if key == "properties":
            out[key] = {k: openapi_to_jsonschema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = openapi_to_jsonschema(value)
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def crd_validator(crd: dict[str, Any], version: str | None = None) -> jsonschema.Draft202012Validator:
    """A validator for one served version of ``crd`` (the first when ``version`` is None)."""
    versions = crd["spec"]["versions"]
    chosen = next((v for v in versions if version in (None, v["name"])), versions[0])
    schema = openapi_to_jsonschema(chosen["schema"]["openAPIV3Schema"])
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


def schema_errors(validator: jsonschema.Draft202012Validator, obj: dict[str, Any]) -> list[str]:
    """'field.path: message' for every violation, sorted (empty when valid)."""
    out = []
    for err in validator.iter_errors(obj):
        path = ".".join(str(p) for p in err.absolute_path) or "<root>"
        out.append(f"{path}: {err.message}")
    return sorted(out)
