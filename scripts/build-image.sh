#!/usr/bin/env bash
# Build the Pitboss OCI image from the Containerfile with buildah, without a Docker engine.
#
#   scripts/build-image.sh            # debootstrap base (cached), host-built wheels, offline RUN steps
#   BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm PIP_OFFLINE=0 scripts/build-image.sh
#                                     # where the build may pull images and reach the package index
#
# Run by `make image`; tests/image/test_image.py builds through `make image` and runs the result.
# Steps, each timed on stderr:
#   1. base: `debootstrap --variant=minbase` of Debian bookworm with python3, python3-venv and
#      ca-certificates, imported with `buildah from scratch` + `buildah mount` + `buildah commit`,
#      tagged by a key of its inputs, so a rerun reuses it (cold about 40 s, warm 0 s).
#   2. wheels: `pip wheel` on the host from the constraints file ($IMAGE_CONSTRAINTS) into
#      scripts/image/wheels/ (RUN steps cannot reach the package index), run by a venv of Debian's
#      /usr/bin/python3: the base's interpreter, so wheels and markers (python_full_version) fit.
#   3. `buildah bud --layers` of the Containerfile with BUILDAH_ISOLATION=chroot and
#      PIP_OFFLINE=1 (pip uses --no-index inside).
# Environment: IMAGE (tag, default localhost/pitboss:<version>), IMAGE_CONSTRAINTS, BASE_IMAGE,
# PIP_OFFLINE, DEBIAN_MIRROR, WHEEL_PYTHON (host interpreter of the base's version, default /usr/bin/python3),
# BASE_ONLY=1 (stop after step 1).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
IMAGE=${IMAGE:-localhost/pitboss:${VERSION}}
IMAGE_CONSTRAINTS=${IMAGE_CONSTRAINTS:-constraints.txt}
PIP_OFFLINE=${PIP_OFFLINE:-1}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WHEEL_PYTHON=${WHEEL_PYTHON:-/usr/bin/python3}
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates
WHEELS=scripts/image/wheels
BASE_RECIPE=1  # bump when step 1 changes, so cached bases are rebuilt
export BUILDAH_ISOLATION=chroot

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (scripts/ensure-system-deps.sh installs it)" >&2; exit 1; }
done
[ -f "$IMAGE_CONSTRAINTS" ] || { echo "error: IMAGE_CONSTRAINTS: no such file: $IMAGE_CONSTRAINTS" >&2; exit 2; }
case "$IMAGE_CONSTRAINTS" in /*|../*) echo "error: IMAGE_CONSTRAINTS: expected a path inside the repository, got $IMAGE_CONSTRAINTS" >&2; exit 2;; esac

t0=$(date +%s)
step() { echo "[build-image] $1 ($(( $(date +%s) - t0 )) s)" >&2; }

# 1. The base image, keyed by everything that goes into it.
if [ -z "${BASE_IMAGE:-}" ]; then
  key=$(printf '%s\n' "$BASE_RECIPE" "$SUITE" minbase "$PACKAGES" "$DEBIAN_MIRROR" | sha256sum | cut -c1-12)
  BASE_IMAGE=localhost/pitboss-base:${SUITE}-${key}
  if buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    step "base $BASE_IMAGE: cached"
  else
    root=$(mktemp -d /var/tmp/pitboss-rootfs.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    step "base: debootstrap $SUITE into $root"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$DEBIAN_MIRROR" >"$root.log" 2>&1 \
      || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
    rm -f "$root.log"
    # What a slim image leaves out: apt lists and caches, docs, man pages, locales but C.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
           "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*
    find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
    ctr=$(buildah from scratch)
    mnt=$(buildah mount "$ctr")
    cp -a "$root"/. "$mnt"/
    buildah umount "$ctr" >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
      --cmd /bin/bash --label "org.opencontainers.image.description=Debian $SUITE minbase with $PACKAGES" "$ctr"
    buildah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
    rm -rf "$root"
    trap - EXIT
    step "base $BASE_IMAGE: built"
  fi
fi

[ "${BASE_ONLY:-0}" = 1 ] && { echo "$BASE_IMAGE"; exit 0; }

# 2. Wheels on the host, from the constraints (the lock): every dependency and the build backend.
if [ "$PIP_OFFLINE" = 1 ]; then
  mkdir -p "$WHEELS"
  venv=var/image/wheel-venv
  mkdir -p var/image
  [ -x "$venv/bin/pip" ] || "$WHEEL_PYTHON" -m venv "$venv" \
    || { echo "error: $WHEEL_PYTHON -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  stamp="$WHEELS/.built-$(cat "$IMAGE_CONSTRAINTS" pyproject.toml | sha256sum | cut -c1-12)"
  if [ -f "$stamp" ]; then
    step "wheels: cached for these constraints and pyproject.toml"
  else
    "$venv/bin/pip" wheel --quiet --disable-pip-version-check --wheel-dir "$WHEELS" \
      --constraint "$IMAGE_CONSTRAINTS" . 'setuptools>=68' >var/image/wheels.log 2>&1 \
      || { grep -v "^WARNING: Location" var/image/wheels.log | tail -20 >&2; exit 1; }
    rm -f "$WHEELS"/pitboss-*.whl  # the project itself is built inside, from the copied tree
    ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "error: pip wheel produced no wheels in $WHEELS" >&2; exit 1; }
    rm -f "$WHEELS"/.built-* && touch "$stamp"
    step "wheels: $(ls "$WHEELS"/*.whl | wc -l) in $WHEELS"
  fi
fi

# 3. The image.
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
log=var/image/bud.log
buildah bud --layers \
  --build-arg BASE_IMAGE="$BASE_IMAGE" \
  --build-arg CONSTRAINTS="$IMAGE_CONSTRAINTS" \
  --build-arg PIP_OFFLINE="$PIP_OFFLINE" \
  --build-arg VERSION="$VERSION" \
  --build-arg REVISION="$revision" \
  -f Containerfile -t "$IMAGE" . >"$log" 2>&1 || { grep -v "^WARNING: Location" "$log" | tail -30 >&2; exit 1; }
step "image $IMAGE built ($(grep -c 'Using cache' "$log") of $(grep -c 'STEP [0-9]' "$log") steps from the layer cache)"

# Drop the layer images of earlier builds (each a few hundred MB): keep those this build made or reused.
# Compared on 11 hex digits: buildah prints a new layer as "--> <11 digits>" and a reused one in full.
# No match (a build with nothing to keep) must not end the script under pipefail, hence the `|| true`.
keep=$({ grep -oE '(Using cache |--> )[0-9a-f]{11,64}' "$log" || true; } | awk '{print substr($NF, 1, 11)}' | sort -u)
for id in $(buildah images --quiet --filter dangling=true --no-trunc | sed 's/^sha256://' | cut -c1-11); do
  grep -qx "$id" <<<"$keep" || buildah rmi "$id" >/dev/null 2>&1 || true
done
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE" >&2
echo "$IMAGE"
