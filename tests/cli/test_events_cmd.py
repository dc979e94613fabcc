"""`pitboss events list | add | delete | import` through typer's CliRunner against the strict emulator.

What the commands write is read back from the emulator's store (validated
there against the generated CRD), and the operator's own parser reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.operator.resources import parse_event
from tests.kube.fixtures import NAMESPACE, create, traffic_event, write_kubeconfig

runner = CliRunner()
ENV = {"KUBERNETES_SERVICE_HOST": "", "COLUMNS": "200"}
EVENTS = ("pitboss.dev/v1alpha1", "trafficevents")


@pytest.fixture
def kubeconfig(kube: Any, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path, kube[1])


def pitboss(kubeconfig: Path, *args: str) -> Any:
    return runner.invoke(app, [*args, "--kubeconfig", str(kubeconfig)], env=ENV)


def test_add_list_delete(kube: Any, kubeconfig: Path) -> None:
    emu, _ = kube
    added = pitboss(kubeconfig, "events", "add", "friday-frenzy", "-n", NAMESPACE, "--kind", "tournament",
                    "--start", "2030-11-29T20:00:00Z", "--end", "2030-11-29T21:00:00+00:00", "--lift", "3",
                    "--label", "service=slots", "--label", "team=games")
    assert added.exit_code == 0, added.output
    created = "created trafficevent/friday-frenzy in casino: tournament 2030-11-29 20:00Z .. 2030-11-29 21:00Z"
    assert created in added.stdout
    obj = emu.get(*EVENTS, NAMESPACE, "friday-frenzy")
    assert obj["metadata"]["labels"] == {"service": "slots", "team": "games"}
    event = parse_event(obj)  # what the operator reads
    assert (event.kind, event.expected_lift, event.start.isoformat()) == ("tournament", 3.0,
                                                                          "2030-11-29T20:00:00+00:00")
    again = pitboss(kubeconfig, "events", "add", "friday-frenzy", "-n", NAMESPACE, "--kind", "tournament",
                    "--start", "2030-11-29T20:00:00Z", "--end", "2030-11-29T21:00:00Z")
    assert again.exit_code == 2 and "already exists" in again.stderr

    create(kube_api(kube), traffic_event("old-promo", {"kind": "promotion", "start": "2020-01-01T00:00:00Z",
                                                       "end": "2020-01-02T00:00:00Z"}))
    listed = pitboss(kubeconfig, "events", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["old-promo", "friday-frenzy"]  # soonest start first
    assert rows[0]["when"] == "past" and rows[1]["when"].startswith("in ")
    upcoming = json.loads(pitboss(kubeconfig, "events", "list", "-n", NAMESPACE, "--upcoming", "--json").stdout)
    assert [r["name"] for r in upcoming] == ["friday-frenzy"]
    table = pitboss(kubeconfig, "events", "list")
    assert "friday-frenzy" in table.stdout and "service=slots" in table.stdout

    missing = pitboss(kubeconfig, "events", "delete", "friday-frenzy", "nope", "-n", NAMESPACE)
    assert missing.exit_code == 2 and "'nope'" in missing.stderr
    assert emu.get(*EVENTS, NAMESPACE, "friday-frenzy") is not None  # nothing deleted
    deleted = pitboss(kubeconfig, "events", "delete", "friday-frenzy", "old-promo", "-n", NAMESPACE)
    assert deleted.exit_code == 0, deleted.output
    assert emu.list(*EVENTS, NAMESPACE) == []


def kube_api(kube: Any) -> Any:
    from tests.kube.fixtures import api_client_for

    return api_client_for(kube[1])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["Bad_Name", "--kind", "t", "--start", "2030-01-01T00:00:00Z", "--end", "2030-01-01T01:00:00Z"], "NAME"),
        (["x", "--kind", "t", "--start", "tomorrow", "--end", "2030-01-01T01:00:00Z"], "--start"),
        (["x", "--kind", "t", "--start", "2030-01-01T00:00:00", "--end", "2030-01-01T01:00:00Z"], "--start"),
        (["x", "--kind", "t", "--start", "2030-01-01T02:00:00Z", "--end", "2030-01-01T01:00:00Z"], "--end"),
        (["x", "--kind", "t", "--start", "2030-01-01T00:00:00Z", "--end", "2030-01-01T01:00:00Z", "--lift", "-1"],
         "--lift"),
        (["x", "--kind", "t", "--start", "2030-01-01T00:00:00Z", "--end", "2030-01-01T01:00:00Z", "--label", "x"],
         "--label"),
        (["x", "--kind", "", "--start", "2030-01-01T00:00:00Z", "--end", "2030-01-01T01:00:00Z"], "kind"),
    ],
)
def test_add_rejects_bad_input(kube: Any, kubeconfig: Path, args: list[str], field: str) -> None:
    result = pitboss(kubeconfig, "events", "add", *args)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and field in line, line
    assert kube[0].list(*EVENTS, NAMESPACE) == []


CSV = """start,end,kind,name,expected_lift
2030-11-29T20:00:00,2030-11-29T21:00:00,tournament,Friday Frenzy,3
2030-12-24T00:00:00,2030-12-25T00:00:00,holiday,christmas,
2031-12-24T00:00:00,2031-12-25T00:00:00,holiday,christmas,
"""


def test_import_is_a_dry_run_with_a_diff_until_apply(kube: Any, kubeconfig: Path, tmp_path: Path) -> None:
    emu, _ = kube
    create(kube_api(kube), traffic_event("friday-frenzy", {"kind": "tournament", "start": "2030-11-29T20:00:00Z",
                                                           "end": "2030-11-29T20:30:00Z", "expectedLift": 3},
                                         labels={"service": "slots"}))
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    dry = pitboss(kubeconfig, "events", "import", str(path), "-n", NAMESPACE, "--label", "service=slots")
    assert dry.exit_code == 0, dry.output
    out = dry.stdout.splitlines()
    assert "~ friday-frenzy: spec.displayName: None -> Friday Frenzy; spec.end: 2030-11-29T20:30:00Z -> " \
           "2030-11-29T21:00:00Z" in out
    assert "+ christmas-20301224: holiday 2030-12-24T00:00:00Z .. 2030-12-25T00:00:00Z" in out
    assert out[-1] == "dry run (add --apply to write): 2 to create, 1 to update, 0 unchanged in casino"
    assert len(emu.list(*EVENTS, NAMESPACE)) == 1  # nothing written
    assert emu.get(*EVENTS, NAMESPACE, "friday-frenzy")["spec"]["end"] == "2030-11-29T20:30:00Z"

    applied = pitboss(kubeconfig, "events", "import", str(path), "-n", NAMESPACE, "--label", "service=slots",
                      "--apply", "--json")
    assert applied.exit_code == 0, applied.output
    plan = json.loads(applied.stdout)
    assert (plan["applied"], plan["create"], plan["update"], plan["unchanged"]) == (True, 2, 1, 0)
    events = {e["metadata"]["name"]: parse_event(e) for e in emu.list(*EVENTS, NAMESPACE)}
    assert set(events) == {"friday-frenzy", "christmas-20301224", "christmas-20311224"}
    assert events["friday-frenzy"].name == "Friday Frenzy" and events["friday-frenzy"].end.hour == 21
    assert events["christmas-20311224"].labels == {"service": "slots"}
    assert events["christmas-20311224"].expected_lift is None
    rerun = json.loads(pitboss(kubeconfig, "events", "import", str(path), "-n", NAMESPACE, "--label",
                               "service=slots", "--json").stdout)
    assert (rerun["create"], rerun["update"], rerun["unchanged"]) == (0, 0, 3)  # idempotent


def test_import_rejects_a_bad_file_naming_the_row(kubeconfig: Path, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("start,end,kind,name\n2030-01-01T00:00:00,yesterday,promo,x\n")
    result = pitboss(kubeconfig, "events", "import", str(path))
    assert result.exit_code == 2
    expected = f"error: {path}, row 2, field 'end': expected an ISO 8601 timestamp, got 'yesterday'"
    assert result.stderr.strip() == expected
