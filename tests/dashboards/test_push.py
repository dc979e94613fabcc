"""``pitboss dashboards push`` against a fake Grafana that follows Grafana's documented HTTP API contract.

No Grafana server can be installed on these machines, so tests/dashboards/fake_grafana.py
stands in for it (real HTTP on loopback; /api/folders and /api/dashboards/db as documented).
Covered: folder created when missing and reused, create then update by uid (the version
counts up, nothing duplicated), 401/403/412 and an unreachable host as one-line errors with
exit 1, bad input with exit 2, through typer's CliRunner and as a process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from dashboards.grafana import build
from dashboards.grafana.common import UIDS
from dashboards.grafana.push import GrafanaClient, GrafanaError, folder_uid, push_all
from tests.dashboards.fake_grafana import FakeGrafana
from tests.harness import free_port

runner = CliRunner()


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana().start()
    try:
        yield fake
    finally:
        fake.stop()


def push(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["dashboards", "push", *args])
    return result.exit_code, result.output


def test_push_creates_the_folder_then_updates_by_uid(grafana: FakeGrafana) -> None:
    code, out = push("--url", grafana.url, "--token", "editor-token")
    assert code == 0, out
    assert list(grafana.folders) == ["pitboss"] and grafana.folders["pitboss"]["title"] == "Pitboss"
    assert set(grafana.dashboards) == set(UIDS)
    stored = grafana.dashboards["pitboss-capacity"]
    assert stored["folderUid"] == "pitboss" and stored["version"] == 1
    assert stored["dashboard"] == {**json.loads((build.HERE / "pitboss-capacity.json").read_text()), "id": None}
    assert f"{grafana.url}/d/pitboss-capacity/" in out

    code, out = push("--url", grafana.url + "/", "--token", "editor-token")  # again: update, no duplicates
    assert code == 0, out
    assert len(grafana.folders) == 1 and set(grafana.dashboards) == set(UIDS)
    assert {d["version"] for d in grafana.dashboards.values()} == {2}
    assert grafana.requests.count(("POST", "/api/folders")) == 1


def test_push_into_an_existing_folder_found_by_title(grafana: FakeGrafana) -> None:
    grafana.create_folder({"uid": "ops-42", "title": "Casino ops"})
    code, out = push("--url", grafana.url, "--token", "editor-token", "--folder", "Casino ops")
    assert code == 0, out
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {"ops-42"}
    assert ("POST", "/api/folders") not in grafana.requests


def test_push_from_a_directory(grafana: FakeGrafana, tmp_path: Path) -> None:
    build.write_all(tmp_path)
    (tmp_path / "pitboss-slo.json").unlink()
    code, out = push("--url", grafana.url, "--token", "editor-token", "--dir", str(tmp_path))
    assert code == 0, out
    assert set(grafana.dashboards) == set(UIDS) - {"pitboss-slo"}


@pytest.mark.parametrize(("token", "status", "hint"), [
    ("wrong-token", "HTTP 401", "check --token"),
    ("viewer-token", "HTTP 403", "role may not"),
])
def test_auth_failures_are_one_line_errors_with_exit_1(grafana: FakeGrafana, token: str, status: str,
                                                       hint: str) -> None:
    code, out = push("--url", grafana.url, "--token", token)
    assert code == 1
    assert out.count("\n") == 1 and out.startswith("error: ") and status in out and hint in out, out
    assert not grafana.dashboards


def test_a_same_named_dashboard_in_the_folder_is_a_412(grafana: FakeGrafana) -> None:
    grafana.create_folder({"uid": "pitboss", "title": "Pitboss"})
    grafana.save_dashboard({"dashboard": {"uid": "someone-elses", "title": "Pitboss / Capacity overview"},
                            "folderUid": "pitboss"})
    code, out = push("--url", grafana.url, "--token", "editor-token")
    assert code == 1 and "HTTP 412" in out and "same name" in out and out.count("\n") == 1, out


def test_an_unreachable_grafana_is_a_one_line_error_with_exit_1() -> None:
    code, out = push("--url", f"http://127.0.0.1:{free_port()}", "--token", "t", "--timeout", "2")
    assert code == 1 and out.startswith("error: cannot reach Grafana at http://127.0.0.1:") and \
        out.count("\n") == 1, out


@pytest.mark.parametrize(("args", "field"), [
    (["--url", "grafana:3000", "--token", "t"], "--url"),
    (["--url", "ftp://grafana", "--token", "t"], "--url"),
    (["--url", "http://grafana", "--token", " "], "--token"),
    (["--url", "http://grafana", "--token", "t", "--folder", " "], "--folder"),
    (["--url", "http://grafana", "--token", "t", "--timeout", "0"], "--timeout"),
    (["--url", "http://grafana", "--token", "t", "--dir", "/nonexistent"], "--dir"),
])
def test_bad_input_exits_2_naming_the_flag(args: list[str], field: str) -> None:
    code, out = push(*args)
    assert code == 2 and out.startswith("error: ") and field in out and out.count("\n") == 1, out


def test_a_directory_with_broken_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    code, out = push("--url", "http://grafana", "--token", "t", "--dir", str(tmp_path))
    assert code == 2 and "x.json" in out, out


def test_client_library_api(grafana: FakeGrafana) -> None:
    boards = {uid: json.loads(t) for uid, t in build.build_all().items()}
    with GrafanaClient(grafana.url, "editor-token") as client:
        pushed = push_all(client, boards, None)  # the General folder
    assert [p.uid for p in pushed] == list(UIDS) and {p.status for p in pushed} == {"success"}
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {""}
    assert folder_uid("Casino / Ops!") == "casino-ops"
    with GrafanaClient(grafana.url, "wrong") as client, pytest.raises(GrafanaError, match="401"):
        client.ensure_folder("x")


def test_push_as_a_process(grafana: FakeGrafana) -> None:
    env_run = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", "dashboards", "push",
                              "--folder", "Pitboss"], capture_output=True, text=True, timeout=120, check=False,
                             env={**__import__("os").environ, "PITBOSS_GRAFANA_URL": grafana.url,
                                  "PITBOSS_GRAFANA_TOKEN": "editor-token"})
    assert env_run.returncode == 0, env_run.stderr
    assert set(grafana.dashboards) == set(UIDS)
