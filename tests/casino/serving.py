"""Run ``pitboss casino serve`` as a real uvicorn subprocess on a free loopback port (test helper).

Used by the fuzz test, the CLI smoke test and the documented curl session.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

PITBOSS = str(Path(sys.executable).parent / "pitboss")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def casino_server(args: list[str], env: dict[str, str] | None = None, timeout: float = 30.0,
                  cwd: Path | None = None) -> Iterator[str]:
    """Start the server with extra CLI ``args``; yield its base URL once /readyz answers; stop it."""
    port = free_port()
    args = list(args)
    if "--port" in args:  # a documented command line: run it on a free port instead
        i = args.index("--port")
        del args[i : i + 2]
    proc = subprocess.Popen(
        [PITBOSS, "casino", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *args],
        env={**os.environ, **(env or {})}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"casino exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("casino did not become ready in time")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
