"""What the loop remembers for the database rule, in status: first sight, scale-ups by anyone, the condition.

Pure functions of controller/operator/database.py over status dicts (the
emulator tests in test_database_guard.py run the same through the loop).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.core.decide import decide
from controller.core.decision import Decision, ObservedState, ReplicaLag
from controller.cycle.memory import DatabaseMemory
from controller.operator import database as db
from controller.operator import status as st
from controller.operator.resources import parse_policy_spec
from controller.targets.base import ScaleState

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
SPEC = parse_policy_spec({
    "targetRef": {"kind": "Deployment", "name": "api"}, "metric": {"promql": "x"}, "capacityPerReplica": 100,
    "databaseReplicas": {"targetRef": {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "name": "pg"},
                         "primaryInstances": 1, "capacityPerReplica": 100, "leadTime": "20m", "lagQuery": "lag"},
})
DB = SPEC.database_replicas
assert DB is not None


def test_replicas_a_person_added_since_the_last_cycle_are_catching_up_not_lagging() -> None:
    old = {"databaseCurrentReplicas": 3, "databaseRecommendations": [{"time": st.iso(NOW), "replicas": 3}]}
    lags = db.LagReading(tuple(ReplicaLag(f"pg-{i}", lag) for i, lag in enumerate([1, 1, 1, 600, 600])))
    fields = db.observed_fields(DB, ScaleState(6, 6, 6), lags, old, NOW + timedelta(seconds=15))  # 5 standbys
    assert fields["database_current_replicas"] == 5 and fields["database_scale_ups"][-1][1] == 2
    state = ObservedState(now=NOW + timedelta(seconds=15), current_replicas=4, ready_replicas=4,
                          observed_demand=500.0, **fields)
    decision = decide(SPEC.to_policy(), None, state)
    assert "DatabaseLagging" not in decision.flags and "2 new replica(s) catching up" in (decision.database_message
                                                                                          or "")


def test_first_sight_is_remembered_so_nothing_drops_at_once() -> None:
    fields = db.observed_fields(DB, ScaleState(5, 5, 5), db.LagReading(measured=False), None, NOW)
    assert fields["database_recommendations"] == ((NOW, 4),)
    builder = st.StatusBuilder(None, 1, NOW)
    decision = Decision(desired_replicas=4, reason="Hold", message="", database_desired_replicas=4,
                        database_recommended_replicas=1, database_message="m")
    db.record(builder, DB, decision, db.LagReading(measured=False), found=4, after=4, ready=4, now=NOW)
    status = builder.build()
    assert [r["replicas"] for r in status["databaseRecommendations"]] == [4, 1]
    later = DatabaseMemory.load(status).recommendations.view(NOW + timedelta(minutes=10),
                                                             DB.scale_down.stabilization_window)
    assert max(r for _, r in later) == 4  # the first sight holds for the window
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["DatabaseMetricsAvailable"]["reason"] == "LagNotMeasured"


def test_scale_ups_are_kept_for_a_lead_time() -> None:
    builder = st.StatusBuilder({"databaseCurrentReplicas": 3}, 1, NOW)
    decision = Decision(desired_replicas=4, reason="Hold", message="", database_recommended_replicas=5)
    db.record(builder, DB, decision, db.LagReading(), found=3, after=5, ready=3, now=NOW)
    status = builder.build()
    assert status["databaseScaleUps"] == [{"time": st.iso(NOW), "replicas": 2}]
    builder = st.StatusBuilder(status, 1, NOW + timedelta(minutes=21))
    db.record(builder, DB, decision, db.LagReading(), found=5, after=5, ready=5, now=NOW + timedelta(minutes=21))
    assert "databaseScaleUps" not in builder.build()  # older than the lead time: forgotten
