"""CLI commands: ``pitboss events list | add | delete | import``, TrafficEvents from the command line.

``list`` shows the TrafficEvents (all namespaces without ``-n``) and which
are past, under way or ahead; ``add`` creates one (validated by the same
model the operator reads, so a bad time or lift is one line and exit 2);
``delete`` removes some by name; ``import`` turns an events CSV in the trace
format into TrafficEvents, create or update, printing the plan as a diff and
writing nothing unless ``--apply``. Every write goes through the official
client. Registered on the root app by ``cli.app``; the cluster plumbing is
``cli.cluster``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from pydantic import ValidationError
from rich.table import Table

from cli.cluster import Cluster, ContextOption, KubeconfigOption, connected
from cli.common import console, guarded, parse_labels, parse_timestamp
from cli.status_cmd import starts_in
from controller.errors import InputError, PermanentError
from controller.operator.kube import MERGE_PATCH
from controller.operator.resources import EVENT_PLURAL, GROUP, VERSION, TrafficEventSpec, field_error, parse_event
from controller.targets.base import ScaleConflict, TargetNotFound
from controller.traceio import read_events
from forecasting.base import Event

events_app = typer.Typer(help="TrafficEvents: the known future (tournaments, promotions) the forecasts use.",
                         no_args_is_help=True)
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
NamespaceOption = typer.Option(None, "--namespace", "-n", help="namespace (default: the kubeconfig context's)")


def register(app: typer.Typer) -> None:
    """Add ``pitboss events ...`` to the root app."""
    app.add_typer(events_app, name="events")


def check_name(name: str, field: str = "NAME") -> str:
    if len(name) > 253 or not NAME.match(name):
        raise InputError(f"expected a Kubernetes name (lower case letters, digits, '-' and '.'), got {name!r}",
                         field=field)
    return name


def manifest(name: str, namespace: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """A TrafficEvent object, its spec validated by the operator's own model (errors name the flag)."""
    try:
        model = TrafficEventSpec.model_validate(spec)
    except ValidationError as exc:
        where, msg = field_error(exc)
        raise InputError(msg, source=f"TrafficEvent {name}", field=where) from None
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrafficEvent",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": model.model_dump(mode="json", by_alias=True, exclude_none=True)}


def _row(obj: dict[str, Any], now: pd.Timestamp) -> dict[str, Any]:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    out = {"namespace": meta.get("namespace"), "name": meta.get("name"), "kind": spec.get("kind"),
           "start": spec.get("start"), "end": spec.get("end"), "expected_lift": spec.get("expectedLift"),
           "display_name": spec.get("displayName"), "labels": meta.get("labels") or {}, "when": "invalid"}
    try:
        event = parse_event(obj)
    except ValueError:
        return out
    out["when"] = "past" if event.end <= now else starts_in(event.start, event.end, now)
    return out


@events_app.command("list", epilog="Example: pitboss events list -n casino --json")
@guarded
def list_cmd(
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="only this namespace (default: all)"),
    upcoming: bool = typer.Option(False, "--upcoming", help="only events that have not ended"),
    json_out: bool = typer.Option(False, "--json", help="one JSON list on stdout"),
    kubeconfig: Path | None = KubeconfigOption,
    context: str | None = ContextOption,
) -> None:
    """The TrafficEvents, soonest first, and when each starts."""
    with connected(kubeconfig, context) as cluster:
        items = cluster.traffic_events(namespace)
    now = pd.Timestamp.now(tz="UTC")
    rows = sorted((_row(o, now) for o in items), key=lambda r: (str(r["start"]), str(r["name"])))
    if upcoming:
        rows = [r for r in rows if r["when"] not in ("past", "invalid")]
    if json_out:
        typer.echo(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} TrafficEvent(s)", title_justify="left")
    for column in ("namespace", "name", "kind", "start", "end", "lift", "labels", "when"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(str(r["namespace"]), str(r["name"]), str(r["kind"]), str(r["start"]), str(r["end"]),
                      "-" if r["expected_lift"] is None else f"{r['expected_lift']:g}",
                      ",".join(f"{k}={v}" for k, v in r["labels"].items()) or "-", str(r["when"]))
    console.print(table)


@events_app.command("add", epilog="Example: pitboss events add friday-frenzy -n casino --kind tournament "
                                  "--start 2026-11-27T20:00:00Z --end 2026-11-27T21:00:00Z --lift 3 "
                                  "--label service=slots")
@guarded
def add_cmd(
    name: str = typer.Argument(..., help="the TrafficEvent's name (a Kubernetes name)"),
    kind: str = typer.Option(..., "--kind", help="events of one kind lift demand alike: tournament, promotion..."),
    start: str = typer.Option(..., "--start", help="ISO 8601 with a zone, e.g. 2026-11-27T20:00:00Z"),
    end: str = typer.Option(..., "--end", help="ISO 8601 with a zone, after --start"),
    lift: float | None = typer.Option(None, "--lift", help="expected multiplier of normal demand, e.g. 3"),
    label: list[str] = typer.Option([], "--label", help="label k=v (policies select events by label); repeatable"),
    display_name: str | None = typer.Option(None, "--display-name", help="human name (default: NAME)"),
    namespace: str | None = NamespaceOption,
    kubeconfig: Path | None = KubeconfigOption,
    context: str | None = ContextOption,
) -> None:
    """Create one TrafficEvent."""
    check_name(name)
    t0, t1 = parse_timestamp(start, "--start"), parse_timestamp(end, "--end")
    if t1 <= t0:
        raise InputError(f"must be after --start ({t0.isoformat()}), got {end!r}", field="--end")
    if lift is not None and not lift > 0:
        raise InputError(f"expected a positive multiplier, got {lift:g}", field="--lift")
    labels = parse_labels(label)
    spec = {"kind": kind, "start": t0.isoformat(), "end": t1.isoformat(), "expectedLift": lift,
            "displayName": display_name}
    with connected(kubeconfig, context) as cluster:
        ns = namespace or cluster.default_namespace()
        obj = manifest(name, ns, {k: v for k, v in spec.items() if v is not None}, labels)
        try:
            cluster.call(f"create trafficevent/{name} in {ns}", cluster.custom.create_namespaced_custom_object,
                         GROUP, VERSION, ns, EVENT_PLURAL, obj)
        except TargetNotFound:
            raise InputError(f"namespace {ns!r} or the TrafficEvent CRD does not exist", field="--namespace") from None
        except ScaleConflict:
            raise InputError(f"TrafficEvent {name!r} already exists in {ns!r} (pitboss events import updates)",
                             field="NAME") from None
    console.print(f"created trafficevent/{name} in {ns}: {kind} {t0:%Y-%m-%d %H:%M}Z .. {t1:%Y-%m-%d %H:%M}Z"
                  + ("" if lift is None else f", lift {lift:g}"), highlight=False)


@events_app.command("delete", epilog="Example: pitboss events delete friday-frenzy -n casino")
@guarded
def delete_cmd(
    names: list[str] = typer.Argument(..., help="TrafficEvent names"),
    namespace: str | None = NamespaceOption,
    kubeconfig: Path | None = KubeconfigOption,
    context: str | None = ContextOption,
) -> None:
    """Delete TrafficEvents by name (all must exist: nothing is deleted otherwise)."""
    for name in names:
        check_name(name)
    with connected(kubeconfig, context) as cluster:
        ns = namespace or cluster.default_namespace()
        existing = {o["metadata"]["name"] for o in cluster.traffic_events(ns)}
        missing = [n for n in names if n not in existing]
        if missing:
            raise InputError(f"no TrafficEvent {', '.join(map(repr, missing))} in namespace {ns!r}", field="NAME")
        for name in names:
            cluster.call(f"delete trafficevent/{name} in {ns}", cluster.custom.delete_namespaced_custom_object,
                         GROUP, VERSION, ns, EVENT_PLURAL, name)
            console.print(f"deleted trafficevent/{name} in {ns}", highlight=False)


def slug(text: str) -> str:
    """A Kubernetes name from a CSV event name: 'Friday Frenzy #3' -> 'friday-frenzy-3'."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:63].rstrip("-") or "event"


def planned(events: list[Event], namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """One TrafficEvent per CSV row; a name that recurs (holidays by year) gets its start date appended."""
    names = [slug(e.name) for e in events]
    counts = {n: names.count(n) for n in names}
    out = []
    for event, name in zip(events, names, strict=True):
        if counts[name] > 1:
            name = f"{name[:54].rstrip('-')}-{event.start:%Y%m%d}"
        spec: dict[str, Any] = {"kind": event.kind, "start": event.start.isoformat(), "end": event.end.isoformat()}
        if event.expected_lift is not None:
            spec["expectedLift"] = event.expected_lift
        if name != event.name:
            spec["displayName"] = event.name
        out.append(manifest(name, namespace, spec, labels))
    seen: set[str] = set()
    for obj in out:
        if obj["metadata"]["name"] in seen:
            raise InputError(f"two rows map to the TrafficEvent name {obj['metadata']['name']!r}; rename one",
                             field="name")
        seen.add(obj["metadata"]["name"])
    return out


def diff(current: dict[str, Any] | None, wanted: dict[str, Any]) -> list[str]:
    """What would change, field by field ('spec.end: 2026-... -> 2026-...')."""
    if current is None:
        return []
    changes = []
    old_spec, new_spec = current.get("spec") or {}, wanted["spec"]
    for key in sorted(set(old_spec) | set(new_spec)):
        before, after = old_spec.get(key), new_spec.get(key)
        same_time = key in ("start", "end") and before is not None and after is not None and (
            pd.Timestamp(before) == pd.Timestamp(after))
        if same_time:
            continue
        if before != after:
            changes.append(f"spec.{key}: {before} -> {after}")
    old_labels = (current.get("metadata") or {}).get("labels") or {}
    for key, value in sorted(wanted["metadata"]["labels"].items()):
        if old_labels.get(key) != value:
            changes.append(f"labels.{key}: {old_labels.get(key)} -> {value}")
    return changes


@events_app.command("import", epilog="Example: pitboss events import events.csv -n casino --label service=slots "
                                     "--apply")
@guarded
def import_cmd(
    path: Path = typer.Argument(..., metavar="EVENTS.csv", help="events CSV in the trace format "
                                "(start,end,kind,name[,expected_lift])"),
    apply: bool = typer.Option(False, "--apply", help="write the changes (default: only print them)"),
    label: list[str] = typer.Option([], "--label", help="label k=v on every imported event; repeatable"),
    namespace: str | None = NamespaceOption,
    json_out: bool = typer.Option(False, "--json", help="print the plan as one JSON object"),
    kubeconfig: Path | None = KubeconfigOption,
    context: str | None = ContextOption,
) -> None:
    """Create or update one TrafficEvent per CSV row; a dry run printing the diff unless --apply."""
    events = read_events(path)
    labels = parse_labels(label)
    with connected(kubeconfig, context) as cluster:
        ns = namespace or cluster.default_namespace()
        wanted = planned(events, ns, labels)
        existing = {o["metadata"]["name"]: o for o in cluster.traffic_events(ns)}
        plan = []
        for obj in wanted:
            name = obj["metadata"]["name"]
            current = existing.get(name)
            changes = diff(current, obj)
            action = "create" if current is None else ("update" if changes else "unchanged")
            plan.append({"name": name, "action": action, "changes": changes, "object": obj})
        if apply:
            _apply(cluster, ns, plan, existing)
    counts = {a: sum(1 for p in plan if p["action"] == a) for a in ("create", "update", "unchanged")}
    if json_out:
        typer.echo(json.dumps({"namespace": ns, "applied": apply, **counts,
                               "plan": [{k: v for k, v in p.items() if k != "object"} for p in plan]}))
        return
    for p in plan:
        spec = p["object"]["spec"]
        if p["action"] == "create":
            lift = f" lift {spec['expectedLift']:g}" if "expectedLift" in spec else ""
            console.print(f"+ {p['name']}: {spec['kind']} {spec['start']} .. {spec['end']}{lift}", highlight=False,
                          markup=False)
        elif p["action"] == "update":
            console.print(f"~ {p['name']}: " + "; ".join(p["changes"]), highlight=False, markup=False)
        else:
            console.print(f"= {p['name']}", highlight=False, markup=False)
    verb = "applied" if apply else "dry run (add --apply to write)"
    console.print(f"{verb}: {counts['create']} to create, {counts['update']} to update, {counts['unchanged']} "
                  f"unchanged in {ns}", highlight=False)


def _apply(cluster: Cluster, ns: str, plan: list[dict[str, Any]], existing: dict[str, Any]) -> None:
    try:
        _write(cluster, ns, plan, existing)
    except ScaleConflict as exc:
        raise PermanentError(f"{exc}; someone changed the events while importing: run the import again") from None


def _write(cluster: Cluster, ns: str, plan: list[dict[str, Any]], existing: dict[str, Any]) -> None:
    for p in plan:
        name, obj = p["name"], p["object"]
        if p["action"] == "create":
            cluster.call(f"create trafficevent/{name} in {ns}", cluster.custom.create_namespaced_custom_object,
                         GROUP, VERSION, ns, EVENT_PLURAL, obj)
        elif p["action"] == "update":
            rv = existing[name]["metadata"].get("resourceVersion")
            labels = {**(existing[name]["metadata"].get("labels") or {}), **obj["metadata"]["labels"]}
            body = {"metadata": {"resourceVersion": rv, "labels": labels}, "spec": obj["spec"]}
            old_spec = existing[name].get("spec") or {}
            for key in set(old_spec) - set(obj["spec"]):
                body["spec"] = {**body["spec"], key: None}  # merge patch: null removes a field the CSV dropped
            cluster.call(f"update trafficevent/{name} in {ns}", cluster.custom.patch_namespaced_custom_object,
                         GROUP, VERSION, ns, EVENT_PLURAL, name, body, _content_type=MERGE_PATCH)
