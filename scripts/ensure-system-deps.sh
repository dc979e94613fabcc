#!/usr/bin/env bash
# Install the Debian packages the tests need, when missing: Prometheus (with
# promtool) and Alertmanager (with amtool). The tests start their own
# instances on loopback ports and stop them by PID; the packaged services are
# stopped here so they hold no ports.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# The image build and its test (tests/image, `make image`): buildah, debootstrap, and Debian's
# python3-venv (the wheels for the image are built by a venv of /usr/bin/python3, the base's Python).
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
# Replication-lag tests: Debian's postgres_exporter (with its example queries.yaml), and the PostgreSQL
# server binaries (initdb, pg_basebackup) that tests/pg_cluster.py starts a primary + standby with.
command -v prometheus-postgres-exporter >/dev/null 2>&1 || need+=(prometheus-postgres-exporter)
ls /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1 || need+=(postgresql)
command -v kubectl >/dev/null 2>&1 || echo "warning: kubectl not found; manifest rendering tests will be skipped" >&2
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  # policy-rc.d 101: do not start the packaged daemons during install.
  printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null
  $sudo_cmd chmod +x /usr/sbin/policy-rc.d
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  $sudo_cmd rm -f /usr/sbin/policy-rc.d
fi
