"""The Pitboss image, really built from the Containerfile (buildah, debootstrap base, offline) and run.

As the non-root user 65532: `pitboss version` and `pitboss operator crds` through `buildah run`;
on a read-only root with a writable /tmp (as the manifests run it): the casino API answering
/readyz, a forecast with a plot (pandas, statsmodels, matplotlib), and one operator cycle against
the strict Kubernetes emulator. The first test builds the image (cold: several minutes; warm, from
buildah's layer cache: well under one).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controller.operator.crds import all_crds
from controller.operator.crds import render as render_crd
from tests.harness import free_port, wait_until
from tests.image.runner import USER, Build, RootFs, build, buildah, image_config, stop, version
from tests.kube.fixtures import write_kubeconfig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(2700),
    pytest.mark.skipif(os.geteuid() != 0, reason="buildah builds and the read-only chroot need root"),
]


@pytest.fixture(scope="module")
def image() -> Build:
    for tool in ("buildah", "debootstrap", "unshare", "chroot"):
        assert shutil.which(tool), f"{tool} not found: scripts/ensure-system-deps.sh installs it"
    return build()


@pytest.fixture(scope="module")
def rootfs(image: Build) -> Iterator[RootFs]:
    fs = RootFs(image.image)
    try:
        yield fs
    finally:
        fs.close()


def test_image_config_is_non_root_with_entrypoint_and_labels(image: Build) -> None:
    config = image_config(image.image)
    assert config["User"] == USER
    assert config["Entrypoint"] == ["pitboss"]
    assert config["WorkingDir"] == "/tmp" and "/tmp" in config["Volumes"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["MPLCONFIGDIR"].startswith("/tmp/") and env["HOME"] == "/tmp"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == version()
    assert labels["org.opencontainers.image.title"] == "pitboss"
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    assert {"org.opencontainers.image.source", "org.opencontainers.image.licenses"} <= set(labels)


def test_final_stage_has_no_compiler_pip_or_build_tree(rootfs: RootFs) -> None:
    root = rootfs.root
    for path in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/x86_64-linux-gnu-gcc-12", "usr/bin/make",
                 "opt/pitboss/bin/pip", "root/.cache/pip", "wheels", "src", "build", "opt/build-venv"):
        assert not (root / path).exists(), path
    site = next((root / "opt" / "pitboss" / "lib").glob("python3*/site-packages"))
    assert not list(site.glob("pip")) and not list(site.glob("pip-*"))
    assert not list(site.glob("pandas/tests")) and list(site.glob("pitboss-*.dist-info"))


def test_version_and_crds_through_buildah_run(rootfs: RootFs) -> None:
    ran = buildah("run", "--user", USER, rootfs.container, "--", "pitboss", "version")
    assert ran.strip() == version()
    crds = buildah("run", "--user", USER, rootfs.container, "--", "pitboss", "operator", "crds")
    assert crds == "---\n".join(render_crd(crd) for crd in all_crds().values())
    assert buildah("run", "--user", USER, rootfs.container, "--", "id", "-u").strip() == "65532"


def test_root_filesystem_is_read_only_and_tmp_writable(rootfs: RootFs, tmp_path: Path) -> None:
    result = rootfs.run(["sh", "-c", "touch /opt/pitboss/x; echo rc=$?; touch /tmp/ok && id -u && pitboss version"],
                        tmp_path)
    assert "Read-only file system" in result.stderr, result.stderr
    assert result.stdout.split() == ["rc=1", "65532", version()], result.stdout + result.stderr
    assert (tmp_path / "ok").is_file()


def test_casino_serves_readyz_on_a_read_only_root(rootfs: RootFs, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "casino.log"
    proc = rootfs.popen(["pitboss", "casino", "serve", "--host", "127.0.0.1", "--port", str(port)], tmp_path, log)
    try:
        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=180, interval=0.5, what="casino /readyz in the image")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "casino_http_requests_total" in metrics
    finally:
        stop(proc)
    assert (tmp_path / "var" / "casino.db").is_file()  # the default SQLite file, on the writable /tmp


def test_forecast_with_a_plot_on_a_read_only_root(rootfs: RootFs, tmp_path: Path) -> None:
    script = ("pitboss trace synth --days 3 --step 5m --seed 7 --out /tmp/trace.csv --events-out /tmp/events.csv"
              " && pitboss forecast /tmp/trace.csv --events /tmp/events.csv --horizon 1h --model holt-winters"
              " --out /tmp/forecast.csv --plot /tmp/forecast.png")
    result = rootfs.run(["sh", "-c", script], tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "forecast.csv").read_text().splitlines()) > 1


def test_operator_cycle_against_the_emulator(rootfs: RootFs, tmp_path: Path, kube: tuple[object, str]) -> None:
    _, url = kube
    write_kubeconfig(tmp_path, url)
    result = rootfs.run(["pitboss", "operator", "run", "--once", "--kubeconfig", "/tmp/kubeconfig",
                         "--no-leader-election", "--incidents-db", "/tmp/incidents.db"], tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 policies in" in result.stdout, result.stdout


def test_bad_input_exits_2_naming_the_field(rootfs: RootFs, tmp_path: Path) -> None:
    result = rootfs.run(["pitboss", "operator", "run", "--once", "--sync-period", "soon"], tmp_path)
    assert result.returncode == 2 and "--sync-period" in result.stdout + result.stderr

