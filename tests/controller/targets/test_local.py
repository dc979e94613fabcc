"""LocalProcessTarget against real casino processes on loopback (no mocks): scale up, down, crash, close."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx
import pytest

from controller.errors import InputError, PermanentError
from controller.targets.base import ScaleTarget, TargetKey, TargetNotFound
from controller.targets.local import LocalConfig, LocalProcessTarget


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_scales_up_and_down_and_stops_everything(tmp_path: Path) -> None:
    cfg = LocalConfig(max_in_flight=2, service_time=0.1)
    with LocalProcessTarget(tmp_path, cfg) as target:
        assert isinstance(target, ScaleTarget)
        state = target.set_replicas(target.key, 2)
        assert (state.replicas, state.status_replicas) == (2, 2)
        target.wait_ready(2, timeout=60)
        state = target.get_scale(target.key)
        assert state.ready_replicas == 2
        urls = target.ready_urls()
        assert len(set(urls)) == 2 and all(u.startswith("http://127.0.0.1:") for u in urls)
        assert target.metrics_urls() == [f"{u}/metrics" for u in urls]
        assert len(target.startup_seconds) == 2 and all(0 < s < 60 for s in target.startup_seconds)
        for url in urls:
            assert httpx.get(f"{url}/readyz").status_code == 200
            # the admission cap we asked for is what the replica enforces
            assert "casino_admission_capacity 2.0" in httpx.get(f"{url}/metrics").text
        newest = target.replicas[-1]
        state = target.set_replicas(target.key, 1)
        assert (state.replicas, state.ready_replicas) == (1, 1)
        assert target.ready_urls() == urls[:1]  # the newest went first, and out of rotation at once
        assert newest.process.wait(timeout=10) is not None
        assert [e.what for e in target.events if e.replica == newest.number][-1] in ("stopping", "stopped")
        ports = [r.port for r in target.replicas]
        assert (tmp_path / "casino.db").exists()  # one shared SQLite file
    assert all(r.process.poll() is not None for r in [*target.replicas, newest])
    assert not any(_listening(p) for p in ports)


def test_stops_replicas_when_the_caller_raises(tmp_path: Path) -> None:
    """The with-block (like Ctrl-C in the demo) always takes the processes down."""
    target = LocalProcessTarget(tmp_path, LocalConfig(service_time=0.1))
    with pytest.raises(KeyboardInterrupt), target:
        target.set_replicas(target.key, 1)
        target.wait_ready(1, timeout=60)
        process = target.replicas[0].process
        raise KeyboardInterrupt
    assert process.poll() is not None
    with pytest.raises(PermanentError):
        target.set_replicas(target.key, 1)


def test_plain_pitboss_casino_serve_replica(tmp_path: Path) -> None:
    """Without a service time the replica is exactly `pitboss casino serve`."""
    with LocalProcessTarget(tmp_path, LocalConfig(max_in_flight=3, service_time=0)) as target:
        assert "casino" in target._argv(1234) and "serve" in target._argv(1234)
        target.set_replicas(target.key, 1)
        target.wait_ready(1, timeout=60)
        assert "casino_admission_capacity 3.0" in httpx.get(target.metrics_urls()[0]).text


def test_a_replica_that_cannot_start_is_replaced_then_given_up(tmp_path: Path) -> None:
    cfg = LocalConfig(service_time=0.1, max_restarts=2)
    target = LocalProcessTarget(tmp_path, cfg)
    target._argv = lambda port: [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]  # type: ignore[method-assign]
    with target:
        target.set_replicas(target.key, 1)
        with pytest.raises(PermanentError, match="keep exiting"):
            target.wait_ready(1, timeout=30)
        assert target.restarts >= 3
        assert target.last_error is not None and "exit 3" in target.last_error and "boom" in target.last_error


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda t: t.set_replicas(TargetKey("prod", "Deployment", "other"), 1), TargetNotFound),
        (lambda t: t.get_scale(TargetKey("local", "StatefulSet", "casino")), TargetNotFound),
        (lambda t: t.set_replicas(t.key, -1), ValueError),
    ],
)
def test_refuses_bad_calls(tmp_path: Path, call: object, error: type[Exception]) -> None:
    with LocalProcessTarget(tmp_path) as target, pytest.raises(error):
        call(target)  # type: ignore[operator]
    assert target.replicas == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_in_flight": 0}, "maxInFlight"), ({"service_time": -1}, "serviceTime"), ({"stop_timeout": 0}, "stop")],
)
def test_config_names_the_bad_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InputError, match=field):
        LocalConfig(**kwargs)  # type: ignore[arg-type]


def test_capacity_is_in_flight_over_service_time() -> None:
    assert LocalConfig(max_in_flight=4, service_time=0.2).capacity == pytest.approx(20.0)
    assert LocalConfig(service_time=0).capacity is None
