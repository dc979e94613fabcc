# The Pitboss image: the `pitboss` CLI (operator, casino API, forecasting) in a venv on a slim Python base.
#
#   docker build -t pitboss .                          # official python:3.11-slim-bookworm, wheels from PyPI
#   make image                                         # buildah, debootstrap base, host-built wheels, offline
#
# Stage `build` turns the constraints (the lock) into wheels and installs them into /opt/pitboss;
# the runtime stage copies only that venv: no compiler, no pip, no pip cache, no build tree.
# Runs as 65532:65532 and works with a read-only root filesystem: everything it writes goes to
# /tmp (mount an emptyDir there): matplotlib's MPLCONFIGDIR, the working directory (the default
# SQLite files under var/), and PROMETHEUS_MULTIPROC_DIR when a deployment sets it.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# A path inside the build context; `make image IMAGE_CONSTRAINTS=...` points it at the lock.
ARG CONSTRAINTS=constraints.txt
# 1: install only from scripts/image/wheels (filled on the host by scripts/build-image.sh).
ARG PIP_OFFLINE=0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY scripts/image/ /build/
COPY ${CONSTRAINTS} /build/constraints.txt
COPY pyproject.toml README.md ./
COPY casino/ casino/
COPY cli/ cli/
COPY controller/ controller/
COPY dashboards/ dashboards/
COPY forecasting/ forecasting/
RUN set -eu; \
    index=""; [ "$PIP_OFFLINE" = 1 ] && index="--no-index"; \
    python3 -m venv /opt/build-venv; \
    /opt/build-venv/bin/pip wheel --quiet $index --find-links /build/wheels \
        --constraint /build/constraints.txt --wheel-dir /wheels /src; \
    python3 -m venv /opt/pitboss; \
    /opt/pitboss/bin/pip install --quiet --no-index --find-links /wheels --constraint /build/constraints.txt pitboss; \
    /opt/pitboss/bin/pip uninstall --quiet --yes pip setuptools; \
    # Test suites of the dependencies (pandas, scipy, statsmodels, numpy, ...): about 130 MB, never imported.
    find /opt/pitboss/lib -type d \( -name tests -o -name e2e_test \) -prune -exec rm -rf {} +; \
    rm -f /opt/pitboss/bin/activate* /opt/pitboss/bin/Activate.ps1; \
    /opt/pitboss/bin/pitboss version

FROM ${BASE_IMAGE}
# A named user for tools that look the uid up (getpass, ssh-style libraries); the home is /tmp.
RUN echo 'pitboss:x:65532:65532:pitboss:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'pitboss:x:65532:' >> /etc/group
COPY --from=build /opt/pitboss /opt/pitboss
ENV PATH=/opt/pitboss/bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 65532:65532
VOLUME ["/tmp"]
# 8000: casino API (`pitboss casino serve`); 8080: operator /metrics, /healthz, /readyz.
EXPOSE 8000 8080
ENTRYPOINT ["pitboss"]
CMD ["--help"]
# OCI labels last: the revision changes with every commit, and the layers above stay cached.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pitboss" \
      org.opencontainers.image.description="Calendar-aware predictive auto-scaling for online casino backends: operator, casino API, CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/pitboss/pitboss" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Pitboss"
