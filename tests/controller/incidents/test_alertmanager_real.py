"""Incidents delivered to a real Alertmanager (Debian package) started by the harness.

Dedup, grouping, resolve by endsAt, silence through ``pitboss incidents ack``,
and the faults: Alertmanager stopped mid-run (it comes back on the same port
having forgotten every alert: the next flush sends the whole state, none
lost), and one invalid alert in a batch (the others still arrive).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.incidents.alertmanager import AlertmanagerClient, AlertmanagerSink
from controller.incidents.engine import IncidentEngine
from controller.incidents.model import Severity, Signal
from controller.incidents.store import IncidentLog
from controller.sources.retry import Backoff
from tests.harness import AlertmanagerServer, wait_until

pytestmark = pytest.mark.alertmanager


def policy_scope() -> dict[str, str]:
    return {"namespace": "test", "policy": f"p-{uuid.uuid4().hex[:8]}"}


def signal(scope: dict[str, str], name: str = "ScalingFailing", **labels: str) -> Signal:
    return Signal(alertname=name, severity=Severity.PAGE, labels={**scope, **labels},
                  summary=f"{name} on {scope['policy']}", description="three calls failed", runbook="scaling-failing")


def engine_for(url: str, log: IncidentLog | None = None) -> IncidentEngine:
    sink = AlertmanagerSink(AlertmanagerClient(url, timeout=timedelta(seconds=2)), ttl=timedelta(minutes=5))
    return IncidentEngine([sink], log=log, resend_interval=timedelta(minutes=1),
                          backoff=Backoff(base=0.05, cap=0.2, attempts=1))


def alerts_of(client: AlertmanagerClient, scope: dict[str, str]) -> list[dict[str, Any]]:
    return client.alerts(filters=[f'policy="{scope["policy"]}"'])


def test_dedup_resolve_and_grouping(alertmanager: AlertmanagerServer) -> None:
    client = AlertmanagerClient(alertmanager.url)
    scope = policy_scope()
    engine = engine_for(alertmanager.url)
    for _ in range(3):  # the same finding three cycles in a row (re-sent each time: forced)
        engine.process(datetime.now(UTC), [signal(scope)], scope)
        engine.flush(datetime.now(UTC), force=True)
    alerts = alerts_of(client, scope)
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert["labels"]["alertname"] == "ScalingFailing" and alert["labels"]["severity"] == "page"
    assert alert["labels"]["pitboss_id"] == signal(scope).fingerprint()
    assert alert["annotations"]["runbook_url"] == "docs/runbooks.md#scaling-failing"
    assert alert["status"]["state"] == "active"

    # grouping: two lagging replicas of the same policy form one group; another alertname another group
    signals = [signal(scope), signal(scope, "DatabaseReplicaLag", replica="r1"),
               signal(scope, "DatabaseReplicaLag", replica="r2")]
    engine.process(datetime.now(UTC), signals, scope)

    def groups() -> dict[str, int]:
        found = {}
        for g in client.groups():
            if g["labels"].get("policy") == scope["policy"]:
                found[g["labels"]["alertname"]] = len(g["alerts"])
        return found

    assert wait_until(lambda: groups() == {"ScalingFailing": 1, "DatabaseReplicaLag": 2} and groups(), timeout=10,
                      what="alert groups")

    # resolve by endsAt: the resolved alerts leave Alertmanager's active list
    engine.process(datetime.now(UTC), [signal(scope)], scope)
    assert sorted(a["labels"]["alertname"] for a in alerts_of(client, scope)) == ["ScalingFailing"]
    engine.process(datetime.now(UTC), [], scope)
    assert alerts_of(client, scope) == []
    client.close()


def test_silence_via_pitboss_incidents_ack(alertmanager: AlertmanagerServer, tmp_path: Path) -> None:
    client = AlertmanagerClient(alertmanager.url)
    scope = policy_scope()
    db = tmp_path / "incidents.db"
    log = IncidentLog(db)
    engine = engine_for(alertmanager.url, log)
    incident = engine.process(datetime.now(UTC), [signal(scope)], scope).fired[0]
    log.close()

    runner = CliRunner()
    result = runner.invoke(app, ["incidents", "ack", incident.id[:8], "--for", "2h", "--db", str(db),
                                 "--alertmanager", alertmanager.url, "--by", "sre", "--comment", "on it"])
    assert result.exit_code == 0, result.output
    assert f"acknowledged {incident.id}" in result.output and "Alertmanager silence" in result.output

    (alert,) = alerts_of(client, scope)
    assert alert["status"]["state"] == "suppressed" and alert["status"]["silencedBy"]
    silence = next(s for s in client.silences() if s["id"] == alert["status"]["silencedBy"][0])
    assert silence["createdBy"] == "sre" and silence["comment"] == "on it"
    length = datetime.fromisoformat(silence["endsAt"]) - datetime.fromisoformat(silence["startsAt"])
    assert abs(length - timedelta(hours=2)) < timedelta(seconds=5)

    listed = runner.invoke(app, ["incidents", "list", "--json", "--alertmanager", alertmanager.url])
    assert listed.exit_code == 0, listed.output
    mine = [r for r in json.loads(listed.output) if r["id"] == incident.id]
    assert mine and mine[0]["am_state"] == "suppressed"
    local = runner.invoke(app, ["incidents", "list", "--json", "--db", str(db)])
    assert json.loads(local.output)[0]["acked_until"] is not None
    client.close()


def test_alertmanager_restarted_gets_the_whole_state_again(
    alertmanager_factory: Callable[..., AlertmanagerServer], tmp_path: Path
) -> None:
    am = alertmanager_factory()
    client = AlertmanagerClient(am.url)
    scope = policy_scope()
    log = IncidentLog(tmp_path / "incidents.db")
    engine = engine_for(am.url, log)
    engine.process(datetime.now(UTC), [signal(scope, "A"), signal(scope, "B")], scope)
    assert len(alerts_of(client, scope)) == 2

    am.stop()
    result = engine.process(datetime.now(UTC), [signal(scope, "A"), signal(scope, "C"), signal(scope, "D")], scope)
    assert [i.alertname for i in result.fired] == ["C", "D"] and [i.alertname for i in result.resolved] == ["B"]
    queue = engine.queues[0]
    assert queue.pending() == 3 and queue.stats.failures >= 1 and "cannot connect" in (queue.stats.last_error or "")

    back = AlertmanagerServer(am.workdir, port=am.port)  # same port, same data dir
    back.start()
    try:
        still = [signal(scope, "A"), signal(scope, "C"), signal(scope, "D")]
        wait_until(lambda: engine.process(datetime.now(UTC), still, scope).pending == {"alertmanager": 0},
                   timeout=10, interval=0.2, what="queue drained")
        # A was delivered before the restart and not changed since: re-sent on recovery, so none is lost
        names = sorted(a["labels"]["alertname"] for a in alerts_of(client, scope))
        assert names == ["A", "C", "D"]
    finally:
        back.stop()
        client.close()


def test_one_invalid_alert_does_not_drop_the_batch(alertmanager: AlertmanagerServer) -> None:
    """Alertmanager answers 400 for the whole POST (measured: it still stores the valid alerts of it).

    The delivery bisects the batch, so exactly the invalid alert is rejected, the others are
    delivered, and the next re-send does not retry the poison.
    """
    client = AlertmanagerClient(alertmanager.url)
    scope = policy_scope()
    engine = engine_for(alertmanager.url)
    signals = [signal(scope, "A"), signal(scope, "B"), signal(scope, "Poisoned", **{"bad-label": "x"}),
               signal(scope, "C")]
    now = datetime.now(UTC)
    engine.process(now, signals, scope)
    queue = engine.queues[0]
    assert sorted(a["labels"]["alertname"] for a in alerts_of(client, scope)) == ["A", "B", "C"]
    assert (queue.stats.delivered, queue.stats.rejected) == (3, 1)
    assert "Poisoned" in (queue.stats.last_error or "") and "bad-label" in (queue.stats.last_error or "")
    engine.process(now + timedelta(minutes=2), signals, scope)  # a re-send: only the three good ones
    assert (queue.stats.delivered, queue.stats.rejected) == (6, 1)
    client.close()


def test_an_alert_read_back_is_the_incident_that_was_sent(alertmanager: AlertmanagerServer) -> None:
    """``from_alert`` inverts ``to_alert`` through a real Alertmanager (what a new shard owner adopts)."""
    from controller.incidents.alertmanager import from_alert
    from controller.operator.incidents import alertmanager_announced

    client = AlertmanagerClient(alertmanager.url)
    scope = policy_scope()
    engine = engine_for(alertmanager.url)
    now = datetime.now(UTC).replace(microsecond=0)
    (sent,) = engine.process(now, [signal(scope, slo="checkout")], scope).fired
    engine.flush(now, force=True)
    (alert,) = alerts_of(client, scope)
    back = from_alert(alert)
    assert back is not None
    assert (back.id, back.alertname, back.severity, back.labels, back.summary, back.description, back.runbook_url,
            back.starts_at, back.firing) == (sent.id, sent.alertname, sent.severity, sent.labels, sent.summary,
                                             sent.description, sent.runbook_url, sent.starts_at, True)
    assert sent.id in {i.id for i in alertmanager_announced(client)()}
    assert from_alert({"labels": {"alertname": "Watchdog"}, "startsAt": alert["startsAt"]}) is None  # not ours
