"""The incident engine with in-memory fakes and the real SQLite log: dedup, lifecycle, resend, queues."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import InputError
from controller.incidents.engine import IncidentEngine
from controller.incidents.events import KubernetesEventSink, RecordingEventRecorder
from controller.incidents.fakes import FakeSink
from controller.incidents.model import Incident, Severity, Signal
from controller.incidents.queue import DeliveryQueue, MemoryOutbox
from controller.incidents.store import IncidentLog
from controller.sources.retry import Backoff

T0 = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
SCOPE = {"namespace": "prod", "policy": "casino"}


def sig(name: str = "ScalingFailing", value: float = 3.0, severity: Severity = Severity.PAGE,
        **labels: str) -> Signal:
    return Signal(alertname=name, severity=severity, labels={**SCOPE, **labels}, summary=f"{name} summary {value:g}",
                  description="why", runbook=name.lower(), value=value)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_dedup_and_lifecycle() -> None:
    sink = FakeSink(resend=False)
    engine = IncidentEngine([sink])
    r1 = engine.process(at(0), [sig(), sig()], SCOPE)
    assert len(r1.fired) == 1 and len(r1.active) == 1
    r2 = engine.process(at(15), [sig(value=4)], SCOPE)
    assert r2.fired == [] and r2.active[0].starts_at == at(0)
    assert r2.active[0].summary == "ScalingFailing summary 4"
    r3 = engine.process(at(30), [], SCOPE)
    assert [i.state for i in r3.resolved] == ["resolved"] and r3.resolved[0].ends_at == at(30)
    assert r3.active == []
    states = [(i.state, i.summary) for i in sink.received()]
    # fired, updated (summary changed), resolved
    assert states == [("firing", "ScalingFailing summary 3"), ("firing", "ScalingFailing summary 4"),
                      ("resolved", "ScalingFailing summary 4")]
    assert engine.process(at(45), [sig()], SCOPE).fired[0].starts_at == at(45)  # a new incident, same id


def test_scope_only_resolves_its_own_policy() -> None:
    engine = IncidentEngine()
    other = {"namespace": "prod", "policy": "wallet"}
    engine.process(at(0), [sig()], SCOPE)
    engine.process(at(0), [Signal("ScalingFailing", Severity.PAGE, other, "s", "d", "r")], other)
    result = engine.process(at(15), [], SCOPE)
    assert [i.labels["policy"] for i in result.resolved] == ["casino"]
    assert result.active == []  # this scope's open incidents
    assert [i.labels["policy"] for i in engine.active.values()] == ["wallet"]
    assert [i.labels["policy"] for i in engine.process(at(30), [], None).resolved] == ["wallet"]


def test_resend_while_firing_only_to_resend_sinks() -> None:
    am, events = FakeSink("am", resend=True), FakeSink("events", resend=False)
    engine = IncidentEngine([am, events], resend_interval=timedelta(minutes=1))
    for s in range(0, 181, 15):  # 3 minutes of the same signal, same numbers
        engine.process(at(s), [sig()], SCOPE)
    assert len(am.received()) == 4  # fired at 0, re-sent at 60, 120, 180
    assert len(events.received()) == 1


def test_severity_change_is_sent_to_all() -> None:
    events = FakeSink("events", resend=False)
    engine = IncidentEngine([events])
    engine.process(at(0), [sig(severity=Severity.TICKET)], SCOPE)
    engine.process(at(15), [sig(severity=Severity.PAGE)], SCOPE)
    assert [i.severity for i in events.received()] == [Severity.TICKET, Severity.PAGE]


def test_down_sink_queues_and_delivers_later_none_lost() -> None:
    sink = FakeSink()
    engine = IncidentEngine([sink], backoff=Backoff(base=10, cap=40, attempts=1, rng=random.Random(1)))
    sink.down = True
    engine.process(at(0), [sig("A"), sig("B")], SCOPE)
    engine.process(at(5), [sig("A")], SCOPE)  # B resolves while the sink is down
    assert engine.queues[0].pending() == 2 and sink.batches == []
    assert engine.queues[0].stats.failures >= 1
    sink.down = False
    engine.process(at(60), [sig("A")], SCOPE)
    latest = sink.latest()
    assert {i.alertname: i.state for i in latest.values()} == {"A": "firing", "B": "resolved"}
    assert engine.queues[0].pending() == 0 and engine.queues[0].stats.failures == 0


def test_backoff_spaces_attempts() -> None:
    sink = FakeSink()
    sink.down = True
    queue = DeliveryQueue(sink, MemoryOutbox(), backoff=Backoff(base=10, cap=40, attempts=1, rng=random.Random(3)))
    queue.submit(IncidentEngine()._new(sig(), sig().fingerprint(), T0))
    for s in range(0, 600):
        queue.flush(at(s))
    # exponential with full jitter, capped at 40 s: far fewer attempts than the 600 cycles
    assert 10 <= sink.attempts <= 200
    assert queue.next_attempt is not None and queue.next_attempt > at(599) - timedelta(seconds=41)


def test_bounded_queue_evicts_oldest_and_counts() -> None:
    sink = FakeSink(resend=False)
    sink.down = True
    engine = IncidentEngine([sink], max_queue=3)
    engine.process(at(0), [sig(f"A{i}") for i in range(5)], SCOPE)
    q = engine.queues[0]
    assert q.pending() == 3 and q.stats.evicted == 2


def test_permanent_rejection_drops_the_batch() -> None:
    sink = FakeSink()
    sink.reject = True
    engine = IncidentEngine([sink])
    engine.process(at(0), [sig()], SCOPE)
    assert engine.queues[0].pending() == 0 and engine.queues[0].stats.rejected == 1
    assert "rejected" in (engine.queues[0].stats.last_error or "")


def test_a_restarted_engine_resolves_what_its_log_left_firing(tmp_path: Path) -> None:
    path = tmp_path / "incidents.db"
    sink = FakeSink()
    sink.down = True
    log = IncidentLog(path)
    engine = IncidentEngine([sink], log=log)
    fired = engine.process(at(0), [sig("A")], SCOPE).fired[0]
    log.close()

    # the operator restarts: the open incident comes back from the log (nothing undelivered does)
    sink2 = FakeSink()
    log2 = IncidentLog(path)
    engine2 = IncidentEngine([sink2], log=log2)
    assert list(engine2.active) == [fired.id]
    result = engine2.process(at(30), [], SCOPE)
    assert [i.id for i in result.resolved] == [fired.id]
    # its first evaluation resolves it, and the resolve is what the sink gets
    assert [(i.id, i.state) for i in sink2.received()] == [(fired.id, "resolved")]
    assert [s for _, s, _ in log2.transitions(fired.id)] == ["firing", "resolved"]
    assert log2.get(fired.id) == result.resolved[0]
    assert log2.incidents("firing") == [] and len(log2.incidents()) == 1


def test_log_ack_and_prefix(tmp_path: Path) -> None:
    log = IncidentLog(tmp_path / "i.db")
    engine = IncidentEngine(log=log)
    inc = engine.process(at(0), [sig("A")], SCOPE).fired[0]
    assert log.resolve_prefix(inc.id[:6]) == inc
    log.ack(inc.id, at(7200), "looking")
    assert log.acked_until(inc.id) == at(7200)
    with pytest.raises(InputError, match="no incident"):
        log.resolve_prefix("ffffffff")
    with pytest.raises(InputError, match="expected a hex incident id"):
        log.resolve_prefix("xyz")


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a Pitboss incident log"):
        IncidentLog(bad)


def test_incident_round_trips_through_json() -> None:
    inc = IncidentEngine()._new(sig(), sig().fingerprint(), T0).resolve(at(60))
    assert Incident.from_dict(inc.to_dict()) == inc
    with pytest.raises(ValueError, match="state"):
        Incident.from_dict({**inc.to_dict(), "state": "open"})


def test_kubernetes_events_sink() -> None:
    recorder = RecordingEventRecorder()
    engine = IncidentEngine([KubernetesEventSink(recorder)], resend_interval=timedelta(seconds=1))
    engine.process(at(0), [sig()], SCOPE)
    engine.process(at(30), [sig()], SCOPE)  # no re-send to Events
    engine.process(at(60), [], SCOPE)
    assert [(e.event_type, e.reason, e.kind, e.name, e.namespace) for e in recorder.events] == [
        ("Warning", "ScalingFailing", "ScalingPolicy", "casino", "prod"),
        ("Normal", "ScalingFailingResolved", "ScalingPolicy", "casino", "prod"),
    ]
    assert "docs/runbooks.md#scalingfailing" in recorder.events[0].message


def test_recovered_resend_sink_gets_every_open_incident_again() -> None:
    """Alertmanager forgets alerts on restart: after an outage all open incidents are re-sent at once."""
    am, events = FakeSink("am", resend=True), FakeSink("events", resend=False)
    engine = IncidentEngine([am, events], backoff=Backoff(base=1, cap=2, attempts=1, rng=random.Random(0)))
    engine.process(at(0), [sig("A")], SCOPE)
    am.down = events.down = True
    engine.process(at(5), [sig("A"), sig("B")], SCOPE)
    am.down = events.down = False
    engine.process(at(10), [sig("A"), sig("B")], SCOPE)
    assert sorted(i.alertname for i in am.batches[-1]) == ["A", "B"]
    assert [i.alertname for i in events.received()] == ["A", "B"]  # events: no duplicates


def test_firing_state_is_resent_each_interval_and_nothing_is_queued() -> None:
    """Prometheus' design: a sink that was down gets the state of the moment, not a replay."""
    am = FakeSink("am", resend=True)
    engine = IncidentEngine([am], resend_interval=timedelta(minutes=1),
                            backoff=Backoff(base=1, cap=2, attempts=1, rng=random.Random(0)))
    am.down = True
    engine.process(at(0), [sig("A"), sig("B", value=1)], SCOPE)
    engine.process(at(15), [sig("A"), sig("B", value=2)], SCOPE)  # B updated twice while the sink is down
    engine.process(at(30), [sig("A")], SCOPE)  # B resolves
    am.down = False
    engine.process(at(45), [sig("A")], SCOPE)
    assert [(i.alertname, i.state) for i in am.received()] == [("A", "firing"), ("B", "resolved")]
    for s in (60, 75, 90, 105):  # A every resend interval; the resolve of B again too (it may have been lost)
        engine.process(at(s), [sig("A")], SCOPE)
    assert [(i.alertname, i.state) for i in am.batches[-1]] == [("A", "firing"), ("B", "resolved")]
    assert len(am.batches) == 2
    engine.process(at(30 + 15 * 60 + 1), [sig("A")], SCOPE)  # past the 15 min resolved retention
    assert [i.alertname for i in am.batches[-1]] == ["A"]


def test_a_new_term_replays_nothing_from_an_earlier_term() -> None:
    """A follower that led before must not deliver what it could not deliver then (stale resolves, old fires)."""
    am, events = FakeSink("am", resend=True), FakeSink("events", resend=False)
    engine = IncidentEngine([am, events], backoff=Backoff(base=1, cap=2, attempts=1, rng=random.Random(0)))
    am.down = events.down = True
    engine.process(at(0), [sig("A"), sig("B")], SCOPE)
    engine.process(at(15), [sig("B")], SCOPE)  # A resolved, undelivered; B firing, undelivered
    am.down = events.down = False
    engine.begin_term()  # leadership lost and regained later
    assert engine.flush(at(600)) == {"am": 0, "events": 0} and am.received() == [] and events.received() == []
    engine.hold(at(615), SCOPE)  # the scope cannot be evaluated yet: B is not confirmed, so not sent
    assert engine.flush(at(615)) == {"am": 0, "events": 0}
    engine.process(at(630), [sig("B")], SCOPE)  # evaluated in this term: now it is sent
    assert [(i.alertname, i.state) for i in am.received()] == [("B", "firing")]
    assert events.received() == []  # its Warning Event was an earlier term's transition


@pytest.mark.parametrize("resend", [True, False], ids=["alertmanager", "events"])
def test_one_poisoned_incident_does_not_drop_the_batch(resend: bool) -> None:
    sink = FakeSink("sink", resend=resend)
    sink.poison = lambda i: i.labels.get("bad") == "yes"
    engine = IncidentEngine([sink])
    signals = [sig(f"A{n}") for n in range(5)] + [sig("Poisoned", bad="yes")] + [sig(f"B{n}") for n in range(4)]
    engine.process(at(0), signals, SCOPE)
    queue = engine.queues[0]
    assert sorted(i.alertname for i in sink.latest().values()) == sorted(
        [f"A{n}" for n in range(5)] + [f"B{n}" for n in range(4)])
    assert queue.stats.rejected == 1 and queue.stats.delivered == 9
    assert "Poisoned" in (queue.stats.last_error or "") and "400" in (queue.stats.last_error or "")
    attempts = sink.attempts
    engine.process(at(90), signals, SCOPE)  # the next re-send does not bisect the same poison again
    assert sink.attempts - attempts <= 1


def test_a_handed_off_scope_leaves_without_a_resolve_and_is_not_reloaded(tmp_path: Path) -> None:
    """Another replica watches the policy now: no sink hears of it, the log says handed_off, a restart forgets it."""
    path = tmp_path / "incidents.db"
    am, events = FakeSink("am", resend=True), FakeSink("events", resend=False)
    log = IncidentLog(path)
    engine = IncidentEngine([am, events], log=log, resend_interval=timedelta(minutes=1))
    other = {"namespace": "prod", "policy": "wallet"}
    fired = engine.process(at(0), [sig("A"), sig("B")], SCOPE).fired
    engine.process(at(0), [Signal("A", Severity.PAGE, other, "s", "d", "r")], other)
    engine.process(at(15), [sig("A")], SCOPE)  # B resolves in this term (re-sent for 15 minutes)
    assert [(i.alertname, i.state) for i in am.received()] == [("A", "firing"), ("B", "firing"), ("A", "firing"),
                                                                ("B", "resolved")]
    handed = engine.hand_off(at(30), SCOPE)
    assert [(i.alertname, i.state, i.ends_at) for i in handed] == [("A", "handed_off", None)]
    assert [i.labels["policy"] for i in engine.active.values()] == ["wallet"]
    engine.flush(at(90), force=True)  # the next resend: only wallet's alert, and not casino's old resolve of B
    assert [(i.alertname, i.labels["policy"], i.state) for i in am.batches[-1]] == [("A", "wallet", "firing")]
    assert all(i.state != "handed_off" for i in am.received() + events.received())
    assert [s for _, s, _ in log.transitions(fired[0].id)] == ["firing", "handed_off"]
    assert log.get(fired[0].id) == handed[0]
    reloaded = IncidentLog(path)  # a restart reloads what is firing here, not what was handed off
    assert [i.labels["policy"] for i in IncidentEngine(log=reloaded).active.values()] == ["wallet"]
    reloaded.close()
    assert engine.process(at(45), [sig("A")], SCOPE).fired[0].starts_at == at(45)  # back here: a new incident
    log.close()


def test_a_handed_off_incident_round_trips_through_json() -> None:
    incident = IncidentEngine().process(at(0), [sig()], SCOPE).fired[0].hand_off(at(15))
    assert Incident.from_dict(incident.to_dict()) == incident and incident.firing is False


def test_an_adopted_incident_is_carried_on_without_a_second_announcement(tmp_path: Path) -> None:
    """The former owner announced A and B (a shard moved): the new owner's engine adopts them.

    A is still reported: no sink hears of it as new, the re-sends carry it with the former
    owner's start, the log says firing. B is not: it resolves, and that is announced.
    """
    am, events = FakeSink("am", resend=True), FakeSink("events", resend=False)
    log = IncidentLog(tmp_path / "incidents.db")
    former = IncidentEngine([FakeSink("former-am", resend=True)]).process(at(0), [sig("A"), sig("B")], SCOPE).fired
    engine = IncidentEngine([am, events], log=log, resend_interval=timedelta(minutes=1))
    assert engine.adopt(former) == former and engine.adopt(former) == []  # open here already: left alone
    result = engine.process(at(15), [sig("A")], SCOPE)
    assert result.fired == [] and [(i.alertname, i.state) for i in result.resolved] == [("B", "resolved")]
    engine.flush(at(15), force=True)
    assert [(i.alertname, i.state) for i in events.received()] == [("B", "resolved")]  # A: no second Warning
    assert [(i.alertname, i.state, i.starts_at) for i in am.batches[-1]] == [("A", "firing", at(0)),
                                                                             ("B", "resolved", at(0))]
    a = next(i for i in former if i.alertname == "A")
    assert log.get(a.id) is not None and log.get(a.id).firing and log.get(a.id).starts_at == at(0)
    log.close()
