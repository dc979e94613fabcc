"""Sync the casino API's event calendar (GET /v1/events) into TrafficEvents.

Each calendar entry becomes one TrafficEvent named ``<slug>-<id>`` in the
target namespace, labelled ``pitboss.dev/source=casino-calendar``, its id,
and one ``service.pitboss.dev/<service>: "true"`` label per service it
affects (so a policy selects the events of its service with
``eventSelector.matchLabels``). Entries that changed are replaced with a
resourceVersion precondition; synced TrafficEvents whose entry is gone from
the calendar window are deleted. Called by ``pitboss operator sync-events``
(a one-shot, e.g. a CronJob with its own RBAC: the operator itself never
writes TrafficEvents).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from kubernetes import client
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.errors import InputError, RetryableError
from controller.operator.kube import MERGE_PATCH
from controller.operator.resources import EVENT_PLURAL, GROUP, VERSION, TrafficEventSpec
from controller.targets.kubernetes import call_api

SOURCE_LABEL = "pitboss.dev/source"
SOURCE = "casino-calendar"
ID_LABEL = "pitboss.dev/calendar-id"
SERVICE_PREFIX = "service.pitboss.dev/"


class CalendarEntry(BaseModel):
    """One item of GET /v1/events (the casino API's EventOut)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int = Field(ge=1)
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    start: datetime
    end: datetime
    expected_lift: float | None = Field(default=None, gt=0)
    services: list[str] = Field(default_factory=list)


@dataclass
class SyncReport:
    """What one sync did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def fetch_calendar(http: httpx.Client, start: datetime, end: datetime) -> list[CalendarEntry]:
    """Entries overlapping [start, end); InputError naming the item and field on a malformed answer."""
    try:
        response = http.get("/v1/events", params={"from": start.isoformat(), "to": end.isoformat()})
    except httpx.HTTPError as exc:
        raise RetryableError(f"casino calendar: cannot reach {http.base_url}: {exc}") from exc
    if response.status_code >= 500:
        raise RetryableError(f"casino calendar: {response.status_code} from {http.base_url}")
    if response.status_code != 200:
        raise InputError(f"answered {response.status_code}: {response.text[:200]}", source="casino calendar")
    items = response.json()
    if not isinstance(items, list):
        raise InputError("expected a JSON list of events", source="casino calendar")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(CalendarEntry.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            raise InputError(first.get("msg", "invalid"), source=f"casino calendar item {i}", field=loc) from None
    return out


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-") or "event"


def traffic_event_for(entry: CalendarEntry, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """The TrafficEvent object for one calendar entry (validated against the TrafficEvent model)."""
    suffix = f"-{entry.id}"
    name = _slug(entry.name)[: 63 - len(suffix)].rstrip("-") + suffix
    spec = TrafficEventSpec.model_validate(
        {"kind": entry.kind, "start": entry.start, "end": entry.end, "expectedLift": entry.expected_lift,
         "displayName": entry.name}
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    all_labels = {**labels, SOURCE_LABEL: SOURCE, ID_LABEL: str(entry.id)}
    for service in entry.services:
        all_labels[f"{SERVICE_PREFIX}{service}"] = "true"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrafficEvent",
        "metadata": {"name": name, "namespace": namespace, "labels": all_labels},
        "spec": spec,
    }


def sync_events(api_client: client.ApiClient, namespace: str, entries: list[CalendarEntry],
                labels: dict[str, str] | None = None) -> SyncReport:
    """Create, update and delete synced TrafficEvents so they mirror ``entries``."""
    custom = client.CustomObjectsApi(api_client)
    report = SyncReport()
    listed: Any = call_api(custom.list_namespaced_custom_object, f"list trafficevents in {namespace}", GROUP,
                           VERSION, namespace, EVENT_PLURAL, label_selector=f"{SOURCE_LABEL}={SOURCE}")
    existing = {item["metadata"]["name"]: item for item in listed.get("items", [])}
    wanted = {obj["metadata"]["name"]: obj for obj in (traffic_event_for(e, namespace, labels or {}) for e in entries)}
    for name, obj in wanted.items():
        current = existing.get(name)
        if current is None:
            call_api(custom.create_namespaced_custom_object, f"create trafficevent/{name}", GROUP, VERSION,
                     namespace, EVENT_PLURAL, obj)
            report.created.append(name)
        elif current.get("spec") != obj["spec"] or (current["metadata"].get("labels") or {}) != obj["metadata"][
            "labels"
        ]:
            patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"],
                                  "labels": obj["metadata"]["labels"]}, "spec": obj["spec"]}
            call_api(custom.patch_namespaced_custom_object, f"update trafficevent/{name}", GROUP, VERSION, namespace,
                     EVENT_PLURAL, name, patch, _content_type=MERGE_PATCH)
            report.updated.append(name)
        else:
            report.unchanged.append(name)
    for name in sorted(set(existing) - set(wanted)):
        call_api(custom.delete_namespaced_custom_object, f"delete trafficevent/{name}", GROUP, VERSION, namespace,
                 EVENT_PLURAL, name)
        report.deleted.append(name)
    return report
