"""Schemathesis hooks for tests/casino/test_fuzz.py: the documented rules that JSON Schema cannot state.

Loaded by the schemathesis CLI (``hooks`` in the run's schemathesis.toml).
Both apply to positive (schema-valid) cases only, so negative cases still send
everything, and both read the rule from the OpenAPI document, not from here:

* ``x-pitboss-rules`` of an operation (``"end > start"`` on POST
  /v1/admin/events): a generated case that breaks the rule is dropped (the casino answers it with a documented
  422 naming the field, which tests/casino/test_events.py checks);
* an ``Idempotency-Key`` names one request (the header's description): a
  positive case gets a fresh key, since the same key with another body is the
  documented 422 (tests/casino/test_wallet.py).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import schemathesis

RULE = re.compile(r"^\s*(\w+)\s*>\s*(\w+)\s*$")


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _stamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        return None


def _value(case: Any, name: str) -> Any:
    body = case.body if isinstance(case.body, dict) else {}
    if name in body:
        return body[name]
    return (case.query or {}).get(name)


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Drop positive cases that break an ``x-pitboss-rules`` rule of their operation."""
    if not _positive(case) or context.operation is None:
        return True
    for rule in context.operation.definition.raw.get("x-pitboss-rules", []):
        match = RULE.match(rule)
        if match is None:
            continue
        later, earlier = (_stamp(_value(case, name)) for name in match.groups())
        if later is not None and earlier is not None and later <= earlier:
            return False
    return True


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A fresh Idempotency-Key for each positive case."""
    if _positive(case) and case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    return case
