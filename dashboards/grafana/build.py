"""Generate the dashboards' JSON: ``build_all()`` in memory, ``write_all(out)`` as ``<uid>.json`` files.

The committed files in dashboards/grafana/*.json are exactly what
``pitboss dashboards build`` writes (a test regenerates and compares them);
each is self-contained (no external variables, the data source chosen by the
``datasource`` variable), so the Helm chart and the kustomize component can
ship them as they are. Called by cli/dashboards_cmd.py, the manifests
generator (``dashboards.grafana.manifests``) and the tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.grafana import business, capacity, operator, service, slo

HERE = Path(__file__).resolve().parent
BUILDERS: dict[str, Callable[[], dm.Dashboard]] = {
    capacity.UID: capacity.build,
    service.UID: service.build,
    slo.UID: slo.build,
    business.UID: business.build,
    operator.UID: operator.build,
}


def render(model: dm.Dashboard) -> str:
    """The dashboard as Grafana JSON text: sorted keys, 2-space indent, a final newline (stable diffs)."""
    return JSONEncoder(sort_keys=True, indent=2).encode(model) + "\n"


def build_all() -> dict[str, str]:
    """uid -> JSON text of every dashboard."""
    return {uid: render(build()) for uid, build in BUILDERS.items()}


def load_all(directory: Path = HERE) -> dict[str, dict[str, Any]]:
    """uid -> parsed JSON of the committed (or written) dashboards in ``directory``."""
    return {uid: json.loads((directory / f"{uid}.json").read_text()) for uid in BUILDERS}


def write_all(out: Path = HERE) -> list[Path]:
    """Write every dashboard to ``out/<uid>.json`` (each atomically); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid, text in build_all().items():
        path = out / f"{uid}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        paths.append(path)
    return paths
