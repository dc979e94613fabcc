"""Sync the casino API's event calendar (GET /v1/events) into TrafficEvents, keeping history.

Each calendar entry becomes one TrafficEvent named ``<slug>-<id>`` in the
target namespace, labelled ``pitboss.dev/source=casino-calendar`` (the
TrafficEvents this sync manages; it never touches others), its id, and one
``service.pitboss.dev/<service>: "true"`` label per service it affects (so a
policy selects the events of its service with ``eventSelector.matchLabels``).

Past events are what teaches the forecast each kind's lift, so they stay:
the retention is the longest ``forecast.history`` of the namespace's
ScalingPolicies (a policy only sees TrafficEvents of its own namespace), or
``--retention`` when that is longer. One run fetches the calendar over
[now - retention, now + days) (the casino answers the entries *overlapping*
that window) and then, for the managed TrafficEvents:

* listed and changed (moved, renamed kind, new lift or services): updated
  with a resourceVersion precondition; listed and missing: created;
* not listed although their own [start, end) overlaps the fetched window:
  deleted (cancelled in the calendar);
* ended before the window (older than the retention): deleted (garbage);
* starting after the window (beyond ``--days``): left alone.

``plan_sync`` is the pure part (what to do), ``apply_plan`` the writes; a
second run with the same calendar changes nothing, and ``dry_run`` only
plans. Called by ``pitboss operator sync-events`` (a one-shot, run by the
CronJob in manifests/components/sync-events with RBAC of its own: the
operator itself never writes TrafficEvents).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from kubernetes import client
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.core.durations import format_duration
from controller.errors import InputError, RetryableError
from controller.operator.kube import MERGE_PATCH
from controller.operator.resources import (
    EVENT_PLURAL,
    GROUP,
    POLICY_PLURAL,
    VERSION,
    ForecastSettings,
    TrafficEventSpec,
    parse_policy_spec,
)
from controller.targets.kubernetes import call_api

log = logging.getLogger(__name__)

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
    """What one sync did (or, dry run, would do)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # cancelled in the calendar
    expired: list[str] = field(default_factory=list)  # ended before the retention window
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # managed, starting after the fetched window
    dry_run: bool = False
    retention: timedelta | None = None
    retention_source: str = ""
    window: tuple[datetime, datetime] | None = None

    def summary(self) -> str:
        """One line: the counts, the retention and where it comes from."""
        create, update, delete = ("would create", "update", "delete") if self.dry_run else (
            "created", "updated", "deleted")
        counts = (f"{create} {len(self.created)}, {update} {len(self.updated)}, {delete} {len(self.deleted)}"
                  f" (+{len(self.expired)} older than the retention), unchanged {len(self.unchanged)}")
        if self.kept:
            counts += f", {len(self.kept)} after the window left alone"
        if self.retention is not None:
            counts += f"; retention {format_duration(self.retention)} ({self.retention_source})"
        return ("dry run: " if self.dry_run else "") + counts


@dataclass
class SyncPlan:
    """The writes one sync makes: objects to create, (name, merge patch) to apply, names to delete."""

    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    report: SyncReport = field(default_factory=SyncReport)


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


_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def check_labels(labels: dict[str, str]) -> None:
    """InputError naming --label unless every label is a valid Kubernetes label the sync does not own."""
    for key, value in labels.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise InputError(f"not a valid Kubernetes label: {key}={value}", field="--label")
        if key in (SOURCE_LABEL, ID_LABEL) or key.startswith(SERVICE_PREFIX):
            raise InputError(f"{key} is set by the sync itself", field="--label")


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


def _span(obj: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The [start, end) of a TrafficEvent object, or None when its spec is unreadable."""
    try:
        spec = TrafficEventSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        return None
    return spec.start, spec.end


def plan_sync(existing: list[dict[str, Any]], entries: list[CalendarEntry], namespace: str,
              labels: dict[str, str] | None, *, window: tuple[datetime, datetime]) -> SyncPlan:
    """What to create, update and delete so the managed TrafficEvents mirror ``entries`` (pure).

    ``existing``: the managed TrafficEvents; ``entries``: the calendar over ``window``
    (entries overlapping it); everything managed that ended before the window is garbage.
    """
    start, end = window
    plan = SyncPlan(report=SyncReport(window=window))
    report = plan.report
    current = {item["metadata"]["name"]: item for item in existing}
    wanted = {obj["metadata"]["name"]: obj for obj in (traffic_event_for(e, namespace, labels or {}) for e in entries)}
    for name, obj in sorted(wanted.items()):
        have = current.get(name)
        if have is None:
            plan.create.append(obj)
            report.created.append(name)
        elif have.get("spec") != obj["spec"] or (have["metadata"].get("labels") or {}) != obj["metadata"]["labels"]:
            patch = {"metadata": {"resourceVersion": have["metadata"]["resourceVersion"],
                                  "labels": _label_patch(have, obj)}, "spec": _spec_patch(have, obj)}
            plan.update.append((name, patch))
            report.updated.append(name)
        else:
            report.unchanged.append(name)
    for name in sorted(set(current) - set(wanted)):
        span = _span(current[name])
        if span is None or span[1] <= start:  # unreadable, or ended before the retention window
            plan.delete.append(name)
            report.expired.append(name)
        elif span[0] < end:  # overlaps the window the calendar answered for: cancelled there
            plan.delete.append(name)
            report.deleted.append(name)
        else:
            report.kept.append(name)
    return plan


def _label_patch(have: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of labels: the wanted ones, and null for those to drop."""
    old = have["metadata"].get("labels") or {}
    new = want["metadata"]["labels"]
    return {**{k: None for k in old if k not in new}, **new}


def _spec_patch(have: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of the spec: the wanted fields, and null for those to drop (e.g. a lift removed)."""
    old = have.get("spec") or {}
    new = want["spec"]
    return {**{k: None for k in old if k not in new}, **new}


def list_managed(api_client: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """The TrafficEvents in ``namespace`` this sync manages (by label)."""
    custom = client.CustomObjectsApi(api_client)
    listed: Any = call_api(custom.list_namespaced_custom_object, f"list trafficevents in {namespace}", GROUP,
                           VERSION, namespace, EVENT_PLURAL, label_selector=f"{SOURCE_LABEL}={SOURCE}")
    return list(listed.get("items") or [])


def apply_plan(api_client: client.ApiClient, namespace: str, plan: SyncPlan) -> SyncReport:
    """Make the plan's writes (updates with their resourceVersion precondition)."""
    custom = client.CustomObjectsApi(api_client)
    for obj in plan.create:
        name = obj["metadata"]["name"]
        call_api(custom.create_namespaced_custom_object, f"create trafficevent/{name}", GROUP, VERSION, namespace,
                 EVENT_PLURAL, obj)
    for name, patch in plan.update:
        call_api(custom.patch_namespaced_custom_object, f"update trafficevent/{name}", GROUP, VERSION, namespace,
                 EVENT_PLURAL, name, patch, _content_type=MERGE_PATCH)
    for name in plan.delete:
        call_api(custom.delete_namespaced_custom_object, f"delete trafficevent/{name}", GROUP, VERSION, namespace,
                 EVENT_PLURAL, name)
    return plan.report


def sync_events(api_client: client.ApiClient, namespace: str, entries: list[CalendarEntry],
                labels: dict[str, str] | None = None, *, window: tuple[datetime, datetime],
                dry_run: bool = False) -> SyncReport:
    """Create, update and delete managed TrafficEvents so they mirror ``entries`` over ``window``."""
    plan = plan_sync(list_managed(api_client, namespace), entries, namespace, labels, window=window)
    plan.report.dry_run = dry_run
    return plan.report if dry_run else apply_plan(api_client, namespace, plan)


def retention_for(api_client: client.ApiClient, namespace: str, minimum: timedelta) -> tuple[timedelta, str]:
    """(retention, where it comes from): the longest forecast.history in ``namespace``, or ``minimum`` if longer.

    A policy whose spec does not validate counts with the default history (and is logged).
    """
    custom = client.CustomObjectsApi(api_client)
    listed: Any = call_api(custom.list_namespaced_custom_object, f"list scalingpolicies in {namespace}", GROUP,
                           VERSION, namespace, POLICY_PLURAL)
    best, source = minimum, "--retention"
    for item in listed.get("items") or []:
        name = (item.get("metadata") or {}).get("name", "?")
        try:
            history = parse_policy_spec(item.get("spec")).forecast.history
        except ValueError as exc:
            log.warning("scalingpolicy/%s: %s; counting the default forecast.history", name, exc)
            history = ForecastSettings().history
        if history > best:
            best, source = history, f"forecast.history of scalingpolicy/{name}"
    return best, source


def run_sync(api_client: client.ApiClient, http: httpx.Client, namespace: str, *, now: datetime, days: int,
             retention: timedelta, labels: dict[str, str] | None = None, dry_run: bool = False) -> SyncReport:
    """One sync at ``now``: retention from the policies, the calendar over [now - retention, now + days)."""
    kept, source = retention_for(api_client, namespace, retention)
    window = (now - kept, now + timedelta(days=days))
    entries = fetch_calendar(http, *window)
    report = sync_events(api_client, namespace, entries, labels, window=window, dry_run=dry_run)
    report.retention, report.retention_source = kept, source
    return report
