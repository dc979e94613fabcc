"""A real PostgreSQL primary and streaming standby on free loopback ports (pytest fixture ``pg_cluster``).

Built from the PostgreSQL binaries on the machine (``PITBOSS_PG_BIN``, else
the newest /usr/lib/postgresql/*/bin): ``initdb`` (``wal_level=replica``, a
``host replication all 127.0.0.1/32 trust`` line in pg_hba.conf),
``pg_ctl start``, ``pg_basebackup -R -X stream`` for the standby, its own
port, ``pg_ctl start``: about a second. initdb refuses to run as root, so as
root every server binary runs as the ``postgres`` user (``runuser``) in a
temporary directory it owns. ``pg_ctl -w`` waits for each server with a
deadline; everything is stopped and removed at teardown, also when the test
or the start-up failed. A missing binary fails the test (never skips).

Other test packages use it with ``from tests.pg_cluster import pg_cluster``
(function scope) or ``pg_cluster_module`` (one cluster per module), imported
into the test module or a conftest.py; ``running_cluster()`` is the context
manager behind both.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import free_port, wait_until

START_TIMEOUT = 60  # seconds pg_ctl may wait for a server (a loaded machine is slow)


def pg_bin() -> Path:
    """Where initdb, pg_ctl and pg_basebackup are; fails the test when they are not installed."""
    configured = os.environ.get("PITBOSS_PG_BIN")
    candidates = [Path(configured)] if configured else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_basebackup").exists():
            return path
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found under /usr/lib/postgresql/*/bin;"
                " install postgresql or set PITBOSS_PG_BIN")


class PgNode:
    """One PostgreSQL server of the cluster: its data directory, port and URL."""

    def __init__(self, cluster: PgCluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.datadir = cluster.root / name
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.log = cluster.root / f"{name}.log"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.cluster.root}"
        self.cluster.run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT),
                         "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (no error if it is not running)."""
        if (self.datadir / "postmaster.pid").exists():
            self.cluster.run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", str(START_TIMEOUT), "stop",
                             check=False)

    def sql(self, query: str) -> str:
        """Run one statement with psql and return its unaligned output (for fixture set-up and assertions)."""
        done = subprocess.run([str(self.cluster.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                               "postgres", "-d", "postgres", "-AtqX", "-v", "ON_ERROR_STOP=1", "-c", query],
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: {query}: {done.stderr.strip()}")
        return done.stdout.strip()

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class PgCluster:
    """A primary and one streaming standby; helpers to pause, resume and measure replication."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = pg_bin()
        self.as_postgres = os.geteuid() == 0
        self.primary = PgNode(self, "primary")
        self.standby = PgNode(self, "standby")
        self.started_in = 0.0  # seconds start() took

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin / tool), *args]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT + 30, check=False,
                              cwd=self.root)
        if check and done.returncode != 0:
            logs = "\n".join(f"--- {n.name}.log\n{n.log_tail()}" for n in (self.primary, self.standby))
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}\n{logs}")
        return done

    def start(self) -> None:
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.run("initdb", "-D", str(self.primary.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync", "--no-instructions")
        with open(self.primary.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# tests/pg_cluster.py\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
                       "fsync = off\nsynchronous_commit = on\nfull_page_writes = off\nwal_keep_size = 128MB\n"
                       "shared_buffers = 16MB\nmax_connections = 60\n")
        with open(self.primary.datadir / "pg_hba.conf", "a") as hba:
            hba.write("\nhost replication all 127.0.0.1/32 trust\n")
        self.primary.start()
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                 "-D", str(self.standby.datadir), "-R", "-X", "stream", "--no-sync", "-c", "fast")
        self.standby.start()
        self.wait_streaming()

    def stop(self) -> None:
        for node in (self.standby, self.primary):
            with contextlib.suppress(Exception):
                node.stop("immediate")

    # ------------------------------------------------------------------ replication helpers

    def wait_streaming(self, timeout: float = 30) -> None:
        """Until the primary sees the standby's WAL receiver streaming."""
        wait_until(lambda: self.primary.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                   == "1", timeout=timeout, what="the standby streaming from the primary")

    def wait_replayed(self, timeout: float = 30) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()")
        wait_until(lambda: self.standby.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t",
                   timeout=timeout, what=f"the standby replaying up to {target}")

    def pause_replay(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_pause()")
        wait_until(lambda: self.standby.sql("SELECT pg_get_wal_replay_pause_state()") == "paused", timeout=10,
                   what="replay paused")

    def resume_replay(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_resume()")

    def replay_lag_seconds(self) -> float | None:
        """The standby's own view: seconds since the last replayed commit, 0 when it has replayed all it got."""
        value = self.standby.sql(
            "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
            "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END")
        return None if value == "" else float(value)


@contextlib.contextmanager
def running_cluster() -> Iterator[PgCluster]:
    """A started primary + standby; stopped and removed on exit, whatever happened."""
    root = Path(tempfile.mkdtemp(prefix="pitboss-pg-"))
    cluster = PgCluster(root)
    try:
        started = time.monotonic()
        cluster.start()
        cluster.started_in = time.monotonic() - started
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A running primary + streaming standby, stopped and removed after the test (about a second to start)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def pg_cluster_module() -> Iterator[PgCluster]:
    """One cluster for a module's tests; each test must leave replay resumed and the standby running."""
    with running_cluster() as cluster:
        yield cluster
