"""Build the Pitboss image with buildah and run commands in it as 65532 on a read-only root filesystem.

There is no Docker engine or kubelet here. ``build()`` runs scripts/build-image.sh (what `make image`
runs). ``RootFs`` mounts a working container of the image (``buildah from`` + ``buildah mount``), and
``argv()`` gives the command line that runs a program in it the way a restricted Pod would: in a
private mount namespace (``unshare --mount``), the image's root bind-mounted read-only, a writable
directory of the test at /tmp (the emptyDir of the manifests), /proc and /dev, then ``chroot`` as
65532:65532 with exactly the image's environment and working directory. The network namespace is
the host's, so a server in the image is reachable on 127.0.0.1. Used by tests/image/test_image.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import REPO

BUILD_SCRIPT = REPO / "scripts" / "build-image.sh"
USER = "65532:65532"


def version() -> str:
    for line in (REPO / "pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("pyproject.toml: no version")


IMAGE = f"localhost/pitboss:{version()}"


@dataclass
class Build:
    image: str
    seconds: float
    log: str


def build(image: str = IMAGE, timeout: float = 2400) -> Build:
    """Build (or rebuild from buildah's layer cache) the image; fails the test with the log on error."""
    env = {**os.environ, "IMAGE": image, "BUILDAH_ISOLATION": "chroot"}
    start = time.monotonic()
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"scripts/build-image.sh failed:\n{log[-4000:]}"
    return Build(image, time.monotonic() - start, log)


def buildah(*args: str, timeout: float = 300) -> str:
    result = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False,
                            env={**os.environ, "BUILDAH_ISOLATION": "chroot"})
    assert result.returncode == 0, f"buildah {' '.join(args)}: {result.stderr}"
    return result.stdout


def image_config(image: str) -> dict[str, Any]:
    """The OCI config of the image (User, Env, Entrypoint, WorkingDir, Labels, Volumes, ExposedPorts)."""
    config: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image))["OCIv1"]["config"]
    return config


@dataclass
class RootFs:
    """A mounted working container of ``image``; ``close()`` unmounts and removes it."""

    image: str
    container: str = ""
    root: Path = field(default_factory=Path)
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.container = buildah("from", "--pull-never", self.image).strip()
        self.root = Path(buildah("mount", self.container).strip())
        self.config = image_config(self.image)

    def argv(self, command: list[str], tmp: Path) -> list[str]:
        """Run ``command`` in the image as 65532, root read-only, ``tmp`` (host dir) at /tmp."""
        tmp.chmod(0o1777)
        script = (
            'set -e; r="$1"; t="$2"; shift 2; '
            'mount --bind "$r" "$r"; mount -o remount,bind,ro "$r"; '
            'mount --bind "$t" "$r/tmp"; mount -t proc proc "$r/proc"; mount --rbind /dev "$r/dev"; '
            f'exec chroot --userspec={USER} "$r" "$@"'
        )
        workdir = self.config.get("WorkingDir") or "/"
        env = ["/usr/bin/env", "-i", *self.config.get("Env", [])]
        inner = [*env, "/bin/sh", "-c", f'cd {workdir} && exec "$@"', "sh", *command]
        return ["unshare", "--mount", "--fork", "--kill-child", "sh", "-c", script, "sh", str(self.root), str(tmp),
                *inner]

    def run(self, command: list[str], tmp: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command, tmp), capture_output=True, text=True, timeout=timeout, check=False)

    def popen(self, command: list[str], tmp: Path, log: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` in the image in its own process group (stop it with ``stop``)."""
        with log.open("wb") as out:
            return subprocess.Popen(self.argv(command, tmp), stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def close(self) -> None:
        subprocess.run(["buildah", "umount", self.container], capture_output=True, check=False, timeout=60)
        subprocess.run(["buildah", "rm", self.container], capture_output=True, check=False, timeout=60)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the process group started by ``RootFs.popen`` (SIGKILL after ``timeout``)."""
    import signal

    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
