"""`pitboss operator sync-events` through typer's CliRunner, against a real casino on loopback.

The casino is the real app served by uvicorn on a free loopback port (SQLite); Kubernetes is the
strict emulator behind a kubeconfig whose token is the CronJob's ServiceAccount, authorized
against exactly the Role that manifests/components/sync-events ships (rendered by kustomize).
The command's flags are the CronJob's own args, so the manifest is what is tested.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from casino.app import create_app
from casino.config import CasinoSettings
from cli.app import app
from tests.harness import free_port
from tests.kube.fixtures import NAMESPACE, api, kube, write_kubeconfig
from tests.manifests.test_kustomize import render

__all__ = ["api", "kube"]
runner = CliRunner()
ADMIN_TOKEN = "sync-events-cli-admin-token-0123456789"
SA_TOKEN = "system:serviceaccount:pitboss-system:pitboss-sync-events"
EVENTS = ("pitboss.dev/v1alpha1", "trafficevents")


@pytest.fixture
def casino_url(tmp_path: Path) -> Iterator[str]:
    """The real casino app on a free loopback port, stopped after the test."""
    settings = CasinoSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'casino.db'}", admin_token=ADMIN_TOKEN,
                              scrypt_n=2)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the casino did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _cronjob_args() -> list[str]:
    cron = next(d for d in render("overlays/dev") if d["kind"] == "CronJob")
    return list(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])


def _add(url: str, name: str, start: datetime, hours: float) -> int:
    body = {"name": name, "kind": "tournament", "start": start.isoformat(),
            "end": (start + timedelta(hours=hours)).isoformat(), "services": ["slots-api"]}
    response = httpx.post(f"{url}/v1/admin/events", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_the_cronjob_args_sync_and_keep_an_event_that_just_ended(kube: Any, casino_url: str, tmp_path: Path) -> None:
    emu, url = kube
    role = next(d for d in render("overlays/dev") if d["kind"] == "Role" and d["metadata"]["name"] ==
                "pitboss-sync-events")
    emu.enforce_rbac(SA_TOKEN, [role])
    now = datetime.now(UTC)
    ended = _add(casino_url, "Lunch Rush", now - timedelta(hours=3), 2)  # ended an hour ago
    upcoming = _add(casino_url, "Evening Cup", now + timedelta(hours=6), 2)
    args = [a if not a.startswith("--casino-url=") else f"--casino-url={casino_url}" for a in _cronjob_args()]
    assert args[:2] == ["operator", "sync-events"] and f"--namespace={NAMESPACE}" in args
    kubeconfig = ["--kubeconfig", str(write_kubeconfig(tmp_path, url, token=SA_TOKEN))]

    first = runner.invoke(app, [*args, *kubeconfig])
    assert first.exit_code == 0, first.output
    assert "created 2" in first.stdout and "retention 14d (--retention)" in first.stdout
    names = {o["metadata"]["name"] for o in emu.list(*EVENTS, NAMESPACE)}
    assert names == {f"lunch-rush-{ended}", f"evening-cup-{upcoming}"}  # the ended one teaches the lift

    assert httpx.delete(f"{casino_url}/v1/admin/events/{upcoming}",
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 204
    dry = runner.invoke(app, [*args, *kubeconfig, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would delete trafficevent/evening-cup-{upcoming}" in dry.stdout and dry.stdout.count("\n") == 2
    assert emu.get(*EVENTS, NAMESPACE, f"evening-cup-{upcoming}") is not None  # a dry run writes nothing

    second = runner.invoke(app, [*args, *kubeconfig])
    assert second.exit_code == 0, second.output
    assert f"delete trafficevent/evening-cup-{upcoming}" in second.stdout
    assert {o["metadata"]["name"] for o in emu.list(*EVENTS, NAMESPACE)} == {f"lunch-rush-{ended}"}
    assert [r for r in emu.log if r.status == 403] == []  # the component's Role is enough


def test_the_shipped_role_is_least_privilege() -> None:
    docs = render("overlays/dev")
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "pitboss-sync-events")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert role["metadata"]["namespace"] == NAMESPACE
    assert granted == {("pitboss.dev", "scalingpolicies", "list")} | {
        ("pitboss.dev", "trafficevents", v) for v in ("list", "create", "patch", "delete")}
    binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "pitboss-sync-events")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pitboss-sync-events",
                                    "namespace": "pitboss-system"}]
    cron = next(d for d in docs if d["kind"] == "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "pitboss-sync-events" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--retention", "soon"], "--retention"),
        (["--retention", "-1d"], "--retention"),
        (["--days", "0"], "--days"),
        (["--casino-url", "ftp://casino"], "--casino-url"),
        (["--label", "team"], "--label"),
        (["--label", "pitboss.dev/source=mine"], "--label"),
        (["--label", "bad key=x"], "--label"),
    ],
)
def test_bad_flags_are_one_line_exit_2(flags: list[str], message: str, tmp_path: Path) -> None:
    base = {"--casino-url": "http://casino", "--namespace": NAMESPACE,
            "--kubeconfig": str(tmp_path / "missing-kubeconfig")}
    for i in range(0, len(flags), 2):
        base[flags[i]] = flags[i + 1]
    argv = ["operator", "sync-events"] + [x for kv in base.items() for x in kv]
    result = runner.invoke(app, argv, env={"KUBERNETES_SERVICE_HOST": ""})
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr and result.stderr.count("\n") == 1
