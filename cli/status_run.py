"""``pitboss status --run``: the status row of a local run, from its record (``run.json``).

A local run (``pitboss demo``) has one policy and no cluster: "now" is the
last cycle's simulated time, the replicas and the reason are that cycle's,
the next event comes from the run's calendar, the next peak from the
planning forecast after now (else the last decision's sizing-window peak),
firing incidents from the run's incident log entries, and the conditions
are derived from the last cycle the way the operator sets them. Called by
``cli.status_cmd``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from cli.status_cmd import StatusRow, next_event
from controller.errors import InputError
from controller.local.recorder import CycleRecord, RunRecord
from forecasting.base import Event


def load(path: Path) -> RunRecord:
    """The record, or InputError naming the file when it is not one."""
    try:
        return RunRecord.load(path)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path), field="--run") from None
    except (ValueError, KeyError, TypeError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InputError(f"not a Pitboss run record (pitboss demo writes one): {detail}", source=str(path),
                         field="--run") from None


def conditions(last: CycleRecord, meta: dict[str, Any]) -> list[str]:
    """The conditions that are not OK after the last cycle, as the operator would set them."""
    out = []
    flags = set(last.flags)
    if last.observed is None:
        out.append(f"MetricsAvailable=False (MetricsUnavailable): {last.metrics_error or 'demand unknown'}")
    if "ForecastUnavailable" in flags or (not flags and last.q95 is None):
        out.append("ForecastReady=False (ForecastUnavailable): no forecast over the sizing window")
    if "CapacityLimited" in flags:
        out.append(f"CapacityLimited=True (MaxReplicasReached): forecast needs more than maxReplicas "
                   f"{meta.get('max_replicas', '?')}")
    if last.ready < last.current:
        out.append(f"Ready replicas {last.ready} < {last.current} asked for (still starting)")
    return out


def firing(record: RunRecord) -> list[str]:
    """Alert names whose last entry in the run's incident log is firing."""
    state: dict[str, tuple[str, str]] = {}
    for item in record.incidents:
        state[str(item.get("id"))] = (str(item.get("alertname", "")), str(item.get("state", "")))
    return sorted({name for name, st in state.values() if st == "firing"})


def peak(record: RunRecord, last: CycleRecord) -> dict[str, Any] | None:
    """The planning forecast's highest headroom-quantile point after now, else the last decision's peak."""
    cap = float(record.meta.get("capacity_per_replica") or 0)
    lo, hi = int(record.meta.get("min_replicas", 0)), int(record.meta.get("max_replicas", 10**6))
    ahead = [(t, q95) for t, _, q95, _ in record.plan if t > last.t and math.isfinite(q95)]
    if ahead:
        at, demand = max(ahead, key=lambda p: p[1])
    elif last.peak is not None and last.peak_at is not None:
        at, demand = pd.Timestamp(last.peak_at), last.peak
    else:
        return None
    need = math.ceil(demand / cap - 1e-9) if cap > 0 else None
    replicas = None if need is None else min(hi, max(lo, need))
    return {"time": pd.Timestamp(at).isoformat(), "demand": round(float(demand), 3), "replicas": replicas}


def run_rows(path: Path) -> tuple[pd.Timestamp, list[StatusRow]]:
    """(the run's last simulated time, its one row)."""
    record = load(path)
    if not record.cycles:
        raise InputError("the run recorded no cycle", source=str(path), field="--run")
    last = record.cycles[-1]
    meta = record.meta
    now = pd.Timestamp(last.t)
    events = [Event(e.name, e.kind, pd.Timestamp(e.start), pd.Timestamp(e.end), e.expected_lift)
              for e in record.events]
    decided = record.decisions()[-1]  # the last cycle whose reason or replica count changed
    policy = meta.get("policy") or {}
    return now, [StatusRow(
        namespace=str(meta.get("namespace", "local")), name=str(meta.get("policy_name", "casino")),
        target=str(meta.get("target", "local processes")), mode=str(policy.get("mode", "Active")),
        current=last.current, desired=last.desired, ready=last.ready,
        reason=last.reason, decided_at=decided.t.isoformat(), message=last.message,
        next_event=next_event(events, now), next_peak=peak(record, last), incidents=firing(record),
        problems=conditions(last, meta),
    )]
