"""Real Prometheus and Alertmanager for tests: started on free loopback ports, stopped by PID.

Debian's binaries (/usr/bin/prometheus, /usr/bin/prometheus-alertmanager,
promtool, amtool) run in a tmp dir of their own. A missing binary fails the
test loudly (CI installs the packages; these tests must never be skipped).
Readiness is polled with a deadline, never a fixed sleep. Fixtures:

* ``prometheus_factory`` / ``alertmanager_factory`` (function scope): start
  servers with your own config; everything started is stopped at teardown.
* ``alertmanager`` (session scope): one shared Alertmanager for tests that only
  post alerts and silences (use distinct label values per test).
* ``exporter_factory``: a small prometheus_client process that serves the
  casino metric contract with a known request rate (tests/exporter_app.py).

Other test packages reuse them with ``from tests.harness import *`` in their
conftest.py (see tests/controller/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

HERE = Path(__file__).resolve().parent
BINARIES = {
    "prometheus": ("prometheus",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),  # Debian's name first, upstream's second
    "promtool": ("promtool",),
    "amtool": ("amtool",),
}


def binary(key: str) -> str:
    """Path of a required binary; fails the test (never skips) when it is missing."""
    for name in BINARIES[key]:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail(f"{' or '.join(BINARIES[key])} not found on PATH: install it (make system-deps);"
                " these tests are not optional")


def stop_all(procs: Iterable[subprocess.Popen[Any]], timeout: float = 30) -> None:
    """SIGTERM every process still running, then wait for each (SIGKILL after ``timeout`` seconds)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Abort(Exception):
    """Raised by a ``wait_until`` check to stop polling at once (e.g. the process died)."""


def wait_until(check: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Abort:
            raise
        except Exception as exc:  # polling: remember the last failure for the message
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f": {last_exc!r}" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


class Process:
    """A child process with a log file, stopped by PID."""

    def __init__(self, name: str, argv: list[str], workdir: Path, ready_url: str | None) -> None:
        self.name, self.argv, self.workdir, self.ready_url = name, argv, workdir, ready_url
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """PID of the running process."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> None:
        """Start and wait until ``ready_url`` answers 200 (or the process dies: fail with its log)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        if self.ready_url is not None:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Poll ``ready_url`` until it answers 200; fail with the log if the process exits first."""
        assert self.ready_url is not None

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise Abort(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            assert self.ready_url is not None
            return httpx.get(self.ready_url, timeout=1.0).status_code == 200

        try:
            wait_until(ready, timeout=timeout, interval=0.1, what=f"{self.name} ready at {self.ready_url}")
        except (AssertionError, Abort):
            self.stop()
            raise

    def log_tail(self, n: int = 2000) -> str:
        """The end of the process log."""
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Signal the process by PID and reap it (SIGKILL after ``timeout``)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.stop(signal.SIGKILL)


class PrometheusServer(Process):
    """Prometheus on 127.0.0.1:<free port> with its own config, rules and TSDB dir."""

    def __init__(self, workdir: Path, *, targets: Sequence[str] = (), scrape_interval: str = "1s",
                 rule_files: Sequence[Path] = (), alertmanager_url: str | None = None,
                 tsdb: Path | None = None, evaluation_interval: str = "1s",
                 scrape_configs: Sequence[dict[str, Any]] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tsdb = tsdb or workdir / "tsdb"
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
            "scrape_configs": [{"job_name": "casino", "static_configs": [{"targets": list(targets)}]},
                               *scrape_configs],  # more jobs (labels, file_sd), as given
        }
        if rule_files:
            config["rule_files"] = [str(p) for p in rule_files]
        if alertmanager_url:
            config["alerting"] = {"alertmanagers": [{"static_configs": [
                {"targets": [alertmanager_url.removeprefix("http://")]}]}]}
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        argv = [
            binary("prometheus"),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.tsdb}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=30d",
            "--rules.alert.resend-delay=1s",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        super().__init__("prometheus", argv, workdir, f"{self.url}/-/ready")

    def set_targets(self, targets: list[str]) -> None:
        """Rewrite the scrape targets and reload the config."""
        path = self.workdir / "prometheus.yml"
        config = yaml.safe_load(path.read_text())
        config["scrape_configs"][0]["static_configs"] = [{"targets": targets}]
        path.write_text(yaml.safe_dump(config))
        httpx.post(f"{self.url}/-/reload", timeout=5).raise_for_status()


class AlertmanagerServer(Process):
    """Alertmanager on 127.0.0.1:<free port>, no clustering, its own data dir."""

    def __init__(self, workdir: Path, *, config: Path | None = None, port: int | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if config is None:
            config = workdir / "alertmanager.yml"
            config.write_text(yaml.safe_dump({
                "route": {"receiver": "null", "group_by": ["alertname", "policy"],
                          "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
                "receivers": [{"name": "null"}],
            }))
        argv = [
            binary("alertmanager"),
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        super().__init__("alertmanager", argv, workdir, f"{self.url}/-/ready")


class ExporterProcess(Process):
    """tests/exporter_app.py: contract metrics with a steady request rate, on a free port."""

    def __init__(self, workdir: Path, *, rate: float, error_share: float = 0.0, slow_share: float = 0.0,
                 addr: str = "127.0.0.1", port: int | None = None, counter: str = "casino_http_requests") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.addr = addr
        self.port = port or free_port()
        self.url = f"http://{addr}:{self.port}/metrics"
        self.target = f"{addr}:{self.port}"
        argv = [sys.executable, str(HERE / "exporter_app.py"), "--port", str(self.port), "--rate", str(rate),
                "--error-share", str(error_share), "--slow-share", str(slow_share), "--addr", addr,
                "--counter", counter]
        super().__init__(f"exporter-{addr}-{self.port}", argv, workdir, self.url)


class CasinoProcess(Process):
    """The real reference casino API (`pitboss casino serve`) on a free port with its own SQLite file."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/metrics"
        self.target = f"127.0.0.1:{self.port}"
        argv = [sys.executable, "-c", "from cli.app import main; main()", "casino", "serve", "--port", str(self.port),
                "--database-url", f"sqlite+aiosqlite:///{workdir / f'casino-{self.port}.db'}",
                "--log-level", "warning"]
        super().__init__(f"casino-{self.port}", argv, workdir, f"{self.base_url}/healthz")


@contextlib.contextmanager
def _started(procs: list[Process]) -> Iterator[list[Process]]:
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Start a Prometheus with ``PrometheusServer`` kwargs; all are stopped at teardown."""
    started: list[Process] = []
    with _started(started):
        def start(**kwargs: Any) -> PrometheusServer:
            server = PrometheusServer(tmp_path / f"prometheus-{len(started)}", **kwargs)
            server.start()
            started.append(server)
            return server
        yield start


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., AlertmanagerServer]]:
    """Start an Alertmanager with ``AlertmanagerServer`` kwargs; all are stopped at teardown."""
    started: list[Process] = []
    with _started(started):
        def start(**kwargs: Any) -> AlertmanagerServer:
            server = AlertmanagerServer(tmp_path / f"alertmanager-{len(started)}", **kwargs)
            server.start()
            started.append(server)
            return server
        yield start


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerServer]:
    """One Alertmanager shared by the session (tests must use distinct label values)."""
    server = AlertmanagerServer(tmp_path_factory.mktemp("alertmanager"))
    server.start()
    with _started([server]):
        yield server


@pytest.fixture
def casino_factory(tmp_path: Path) -> Iterator[Callable[[int], list[CasinoProcess]]]:
    """Start ``n`` real casino API processes at once (they boot in parallel); all stopped at teardown."""
    started: list[Process] = []
    with _started(started):
        def start(n: int = 1) -> list[CasinoProcess]:
            procs = [CasinoProcess(tmp_path / "casinos") for _ in range(n)]
            ready_urls = [p.ready_url for p in procs]
            for p in procs:  # launch all, then wait for each
                p.ready_url = None
                p.start()
                started.append(p)
            for p, url in zip(procs, ready_urls, strict=True):
                p.ready_url = url
                p.wait_ready(timeout=60)
            return procs
        yield start


@pytest.fixture
def exporter_factory(tmp_path: Path) -> Iterator[Callable[..., ExporterProcess]]:
    """Start contract-metric exporters (``rate`` requests/s); all are stopped at teardown."""
    started: list[Process] = []
    with _started(started):
        def start(**kwargs: Any) -> ExporterProcess:
            proc = ExporterProcess(tmp_path / "exporters", **kwargs)
            proc.start()
            started.append(proc)
            return proc
        yield start
