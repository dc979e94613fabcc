"""CLI commands: ``pitboss dashboards build`` and ``pitboss dashboards push`` (Grafana dashboards as code).

Registered on the root app by cli.app. ``build`` writes the five dashboards'
JSON (``dashboards.grafana.build``) to ``--out`` and, when asked, the kustomize
component (``--manifests``) and the layout pictures (``--images``);
``make dashboards`` regenerates all three in the repository. ``push``
publishes them through Grafana's HTTP API (``dashboards.grafana.push``):
folder looked up or created, each dashboard created or updated by uid. Bad
input exits 2 with one line naming the flag; Grafana refusing or being
unreachable exits 1 with one line saying what to check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import console, fail, guarded
from controller.errors import InputError
from dashboards.grafana import build, layout, manifests
from dashboards.grafana.push import DEFAULT_FOLDER, GrafanaClient, GrafanaError, push_all

EXIT_RUNTIME = 1
dashboards_app = typer.Typer(help="Build Pitboss' Grafana dashboards and publish them.", no_args_is_help=True)


def _out_dir(path: Path, flag: str) -> Path:
    if path.exists() and not path.is_dir():
        raise InputError(f"expected a directory, got the file {path}", field=flag)
    return path


def _load(directory: Path) -> dict[str, dict[str, Any]]:
    """The dashboards in ``directory`` (every ``*.json`` with a uid); InputError naming the file otherwise."""
    if not directory.is_dir():
        raise InputError(f"expected a directory of dashboard JSON, got {directory}", field="--dir")
    boards: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            board = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"not dashboard JSON: {exc}", source=str(path)) from None
        if not isinstance(board, dict) or not board.get("uid") or not board.get("title"):
            raise InputError("expected a dashboard with a uid and a title", source=str(path))
        boards[str(board["uid"])] = board
    if not boards:
        raise InputError(f"no dashboard JSON in {directory}", field="--dir")
    return boards


@dashboards_app.command("build")
@guarded
def build_cmd(
    out: Annotated[Path, typer.Option(help="directory for <uid>.json")] = Path("dashboards/grafana"),
    manifests_dir: Annotated[Path | None, typer.Option("--manifests", help="also write the kustomize component"
                                                        " here (manifests/components/dashboards)")] = None,
    images: Annotated[Path | None, typer.Option(help="also draw each dashboard's layout here (docs/img)")] = None,
    docs: Annotated[Path | None, typer.Option(help="also rewrite the panel tables of this page"
                                              " (docs/dashboards.md)")] = None,
) -> None:
    """Write the dashboards' JSON (and, when asked, the kustomize component and layout pictures)."""
    paths = build.write_all(_out_dir(out, "--out"))
    if manifests_dir is not None:
        paths += manifests.write_component(_out_dir(manifests_dir, "--manifests"))
    if images is not None:
        paths += layout.draw_all(build.load_all(out), _out_dir(images, "--images"))
    if docs is not None:
        if not docs.is_file():
            raise InputError(f"expected a Markdown file, got {docs}", field="--docs")
        paths.append(layout.update_docs(docs, build.load_all(out)))
    for path in paths:
        console.print(f"wrote {path}")


@dashboards_app.command("push")
@guarded
def push_cmd(
    url: Annotated[str, typer.Option(envvar="PITBOSS_GRAFANA_URL", help="Grafana base URL, e.g. http://grafana:3000")],
    token: Annotated[str, typer.Option(envvar="PITBOSS_GRAFANA_TOKEN", help="service account token (Editor)")],
    folder: Annotated[str, typer.Option(help="folder title (created when missing)")] = DEFAULT_FOLDER,
    directory: Annotated[Path | None, typer.Option("--dir", help="push the JSON in this directory instead of the"
                                                   " built-in dashboards")] = None,
    timeout: Annotated[float, typer.Option(help="seconds per HTTP request")] = 10.0,
) -> None:
    """Create or update every dashboard in Grafana by uid, in one folder."""
    if not 0 < timeout <= 300:
        raise InputError(f"expected seconds in (0, 300], got {timeout:g}", field="--timeout")
    boards = _load(directory) if directory is not None else {
        uid: json.loads(text) for uid, text in build.build_all().items()}
    try:
        with GrafanaClient(url, token, timeout=timeout) as client:
            pushed = push_all(client, boards, folder)
    except GrafanaError as exc:
        raise fail(str(exc), EXIT_RUNTIME) from None
    for item in pushed:
        console.print(f"{item.status or 'pushed'} {item.uid} v{item.version}: {item.url}")


def register(app: typer.Typer) -> None:
    """Add ``pitboss dashboards`` to the root app."""
    app.add_typer(dashboards_app, name="dashboards")
