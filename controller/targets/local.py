"""A ScaleTarget whose replicas are local casino processes (the embedded default).

Called by the local run (``controller.local``, ``pitboss demo``) where the
Kubernetes adapter would be. Each replica is a uvicorn subprocess of the
reference casino API on a free 127.0.0.1 port; all of them share one SQLite
database file under the run directory (WAL mode, so they can write together).
``set_replicas`` starts processes at once (scale up) or terminates the newest
ones gracefully (SIGTERM, then SIGKILL after ``stop_timeout``). A watcher
thread polls ``/readyz`` of starting replicas every 50 ms, so a replica counts
as ready within ~50 ms of answering 200, and the time from spawn to ready is
measured (``startup_seconds``): the loop uses it as the policy's lead time.
A replica that exits on its own is replaced (like a Deployment recreates a
pod) and counted in ``restarts``. ``close()`` (also on context-manager exit,
exceptions and Ctrl-C included, and at interpreter exit) stops every process.

Replica command: ``pitboss casino serve`` when ``service_time`` is 0, else
``python -m controller.local.replica`` (the same app plus an awaited
per-request service time inside the admission gate; see that module).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from controller.errors import InputError, PermanentError, RetryableError
from controller.targets.base import ScaleState, TargetKey, TargetNotFound

DEFAULT_KEY = TargetKey("local", "Deployment", "casino")
POLL_SECONDS = 0.05


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the kernel's pick; a clash at bind makes the replica restart)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    """One local replica process."""

    number: int
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    spawned: float  # monotonic seconds
    ready_at: float | None = None
    stopping: bool = False
    stop_requested: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready(self) -> bool:
        return self.ready_at is not None and not self.stopping


@dataclass
class ReplicaEvent:
    """Something that happened to a replica (for the run's timeline)."""

    at: float  # monotonic seconds
    replica: int
    what: str  # spawned | ready | stopping | stopped | exited
    detail: str = ""


@dataclass
class LocalConfig:
    """How local replicas are started."""

    max_in_flight: int = 4
    service_time: float = 0.2  # seconds held per business request
    startup_timeout: float = 60.0
    stop_timeout: float = 5.0
    max_restarts: int = 5  # replicas that exited on their own; past it, no more are started
    python: str = sys.executable
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise InputError(f"must be >= 1, got {self.max_in_flight}", field="maxInFlight")
        if self.service_time < 0:
            raise InputError(f"must be >= 0 seconds, got {self.service_time}", field="serviceTime")
        if self.startup_timeout <= 0 or self.stop_timeout <= 0:
            raise InputError("must be positive", field="startupTimeout/stopTimeout")

    @property
    def capacity(self) -> float | None:
        """Nominal requests/s one replica admits (None without a service time: CPU-bound)."""
        return self.max_in_flight / self.service_time if self.service_time > 0 else None


class LocalProcessTarget:
    """``ScaleTarget`` over local casino processes sharing one SQLite file under ``run_dir``."""

    def __init__(self, run_dir: Path, config: LocalConfig | None = None, *, key: TargetKey = DEFAULT_KEY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.config = config or LocalConfig()
        self.key = key
        self.clock = clock
        self.database = self.run_dir / "casino.db"
        self.log_dir = self.run_dir / "replicas"
        self.replicas: list[Replica] = []
        self.stopping: list[Replica] = []
        self.desired = 0
        self.version = 0
        self.restarts = 0
        self.startup_seconds: list[float] = []
        self.events: list[ReplicaEvent] = []
        self.last_error: str | None = None
        self._next_number = 1
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._http = httpx.Client(timeout=1.0)
        self._watcher: threading.Thread | None = None
        atexit.register(self.close)

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalProcessTarget:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        """Create the run directory and start the readiness watcher (idempotent)."""
        if self._closed.is_set():
            raise PermanentError("local target: already closed")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="pitboss-local-replicas", daemon=True)
            self._watcher.start()

    def close(self) -> None:
        """Stop every replica (graceful, then forced) and the watcher. Safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            victims = self.replicas + self.stopping
            self.replicas, self.desired = [], 0
        for rep in victims:
            self._signal(rep, signal.SIGTERM)
        deadline = time.monotonic() + self.config.stop_timeout
        for rep in victims:
            try:
                rep.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(rep, signal.SIGKILL)
                rep.process.wait()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=2)
        self._http.close()
        atexit.unregister(self.close)

    # ------------------------------------------------------------- ScaleTarget
    def get_scale(self, key: TargetKey) -> ScaleState:
        """Desired, existing and ready replicas."""
        self._check_key(key)
        with self._lock:
            ready = sum(1 for r in self.replicas if r.ready)
            return ScaleState(self.desired, len(self.replicas), ready, str(self.version), selector="app=casino")

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        """Start or stop processes so ``replicas`` exist (new ones become ready in the background)."""
        self._check_key(key)
        if replicas < 0:
            raise ValueError(f"replicas: must be >= 0, got {replicas}")
        if self._closed.is_set():
            raise PermanentError("local target: closed")
        if self._watcher is None:
            self.start()
        with self._lock:
            self.desired = replicas
            self.version += 1
            self._converge()
        return self.get_scale(key)

    def _check_key(self, key: TargetKey) -> None:
        if key != self.key:
            raise TargetNotFound(f"{key}: not found (this local target manages {self.key})")

    # ------------------------------------------------------------------ views
    def ready_urls(self) -> list[str]:
        """Base URLs of the ready replicas, oldest first (what the load generator routes to)."""
        with self._lock:
            return [r.url for r in self.replicas if r.ready]

    def metrics_urls(self) -> list[str]:
        """/metrics of every ready replica (what the ScrapeSource scrapes)."""
        return [f"{u}/metrics" for u in self.ready_urls()]

    def wait_ready(self, count: int, timeout: float) -> float:
        """Block until ``count`` replicas are ready; returns the seconds waited. RetryableError on timeout."""
        began = time.monotonic()
        while True:
            with self._lock:
                ready = sum(1 for r in self.replicas if r.ready)
                error = self.last_error
            if ready >= count:
                return time.monotonic() - began
            if self.restarts > self.config.max_restarts:
                raise PermanentError(f"local target: replicas keep exiting ({self.restarts} restarts): {error}")
            if time.monotonic() - began > timeout:
                raise RetryableError(f"local target: {ready} of {count} replicas ready after {timeout:.0f}s"
                                     + (f" ({error})" if error else ""))
            time.sleep(POLL_SECONDS)

    # --------------------------------------------------------------- internals
    def _argv(self, port: int) -> list[str]:
        cfg = self.config
        db = f"sqlite:///{self.database}"
        if cfg.service_time > 0:
            return [cfg.python, "-m", "controller.local.replica", "--port", str(port), "--database-url", db,
                    "--max-in-flight", str(cfg.max_in_flight), "--service-time-ms", f"{cfg.service_time * 1000:g}"]
        return [cfg.python, "-c", "from cli.app import main; main()", "casino", "serve", "--port", str(port),
                "--database-url", db, "--max-in-flight", str(cfg.max_in_flight), "--log-level", "warning"]

    def _spawn(self) -> Replica:
        number = self._next_number
        self._next_number += 1
        port = free_port()
        log_path = self.log_dir / f"replica-{number}.log"
        env = {**os.environ, **self.config.extra_env, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as log:
            # Own session: a Ctrl-C in the terminal reaches us, and we stop the replicas in order.
            process = subprocess.Popen(self._argv(port), stdout=log, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True, cwd=Path.cwd())
        rep = Replica(number, port, process, log_path, self.clock())
        self.events.append(ReplicaEvent(rep.spawned, number, "spawned", f"port {port}"))
        return rep

    def _converge(self) -> None:
        """Under the lock: spawn or stop replicas until len(replicas) == desired."""
        while len(self.replicas) < self.desired:
            self.replicas.append(self._spawn())
        while len(self.replicas) > self.desired:
            # Newest first; an unready one is cheapest to lose.
            rep = self.replicas.pop()
            rep.stopping, rep.stop_requested = True, self.clock()
            self.stopping.append(rep)
            self.events.append(ReplicaEvent(rep.stop_requested, rep.number, "stopping"))
            self._signal(rep, signal.SIGTERM)

    @staticmethod
    def _signal(rep: Replica, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            rep.process.send_signal(sig)

    def _probe(self, rep: Replica) -> bool:
        try:
            return self._http.get(f"{rep.url}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def _tail(self, rep: Replica, n: int = 300) -> str:
        try:
            text = rep.log_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return text[-n:].replace("\n", " | ")

    def _watch(self) -> None:
        """Poll starting replicas' /readyz, reap stopped ones, replace crashed ones."""
        while not self._closed.is_set():
            with self._lock:
                starting = [r for r in self.replicas if r.ready_at is None]
            for rep in starting:
                if rep.process.poll() is None and self._probe(rep):
                    with self._lock:
                        if rep in self.replicas and rep.ready_at is None:
                            rep.ready_at = self.clock()
                            self.startup_seconds.append(rep.ready_at - rep.spawned)
                            self.events.append(ReplicaEvent(rep.ready_at, rep.number, "ready",
                                                            f"{rep.ready_at - rep.spawned:.2f}s after spawn"))
            with self._lock:
                self._reap()
            self._closed.wait(POLL_SECONDS)

    def _reap(self) -> None:
        now = self.clock()
        for rep in list(self.stopping):
            if rep.process.poll() is not None:
                self.stopping.remove(rep)
                self.events.append(ReplicaEvent(now, rep.number, "stopped", f"exit {rep.process.returncode}"))
            elif now - (rep.stop_requested or now) > self.config.stop_timeout:
                self._signal(rep, signal.SIGKILL)
        for rep in list(self.replicas):
            code = rep.process.poll()
            too_slow = rep.ready_at is None and now - rep.spawned > self.config.startup_timeout
            if code is None and not too_slow:
                continue
            if too_slow:
                self._signal(rep, signal.SIGKILL)
                rep.process.wait()
            detail = f"exit {rep.process.returncode}" if not too_slow else "not ready in time, killed"
            self.last_error = f"replica {rep.number} {detail}: {self._tail(rep)}"
            self.events.append(ReplicaEvent(now, rep.number, "exited", self.last_error))
            self.replicas.remove(rep)
            self.restarts += 1
        if not self._closed.is_set() and self.restarts <= self.config.max_restarts:
            self._converge()
