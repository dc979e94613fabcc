# Pitboss: every target sets itself up on a fresh machine (venv, packages).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The lock: every dependency of '.[dev,bench]' pinned, so every fresh machine gets the same
# versions. A pip constraints file written by `uv pip compile` (`make lock`): uv resolves from
# PyPI alone, so the lock does not pick up this machine's pip config (find-links /opt/wheels,
# file:// extra indexes) and re-locking takes seconds; plain pip installs from it (-c), so
# nothing but pip is needed to install. Re-lock after changing dependencies: `make lock`.
LOCK := constraints.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | md5sum | cut -c1-8)
PYTEST_ARGS ?=
# The newest releases: a second venv from a plain `pip install '.[dev]'` (no lock, no bench
# extra, whose statsforecast caps pandas below 3), running the tests of the forecast path.
LATEST_VENV ?= var/venv-latest
LATEST_TESTS ?= tests/forecasting tests/controller/core tests/controller/simulate tests/controller/local \
	tests/controller/test_traceio.py tests/controller/sources/test_conformance.py tests/cli tests/test_readme.py

.PHONY: install lock system-deps demo test test-latest lint bench bench-casino bench-forecast \
        bench-simulate bench-frontier bench-operator bench-observe bench-local clean dashboards

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(LOCK) -e '.[dev,bench]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Lock policy, not a package bound: the lock keeps the pandas 2 end of the supported range
# (2.2 .. 3.x; statsforecast, in the bench extra, caps pandas below 3 in its newest release
# anyway) and test-latest runs pandas 3, so CI covers both ends.
LOCK_POLICY := pandas<3

## lock: re-resolve every dependency (all extras) to the newest releases pyproject.toml allows
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'uv>=0.5'
	echo '$(LOCK_POLICY)' > $(VENV)/lock-policy.txt
	$(VENV)/bin/uv pip compile pyproject.toml --all-extras --python-version 3.11 \
		-c $(VENV)/lock-policy.txt --custom-compile-command 'make lock' -q -o $(LOCK)

system-deps:
	@bash scripts/ensure-system-deps.sh

## demo: run the main job on the embedded defaults (no services needed)
demo: install
	$(VENV)/bin/pitboss demo

## test: every test, against real PostgreSQL, Redis, Prometheus and Alertmanager
test: install system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

## test-latest: the forecast-path tests on the newest releases (a plain pip install, upgraded eagerly)
test-latest: system-deps
	@test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade --upgrade-strategy eager '.[dev]'
	@$(LATEST_VENV)/bin/python -m pip list 2>/dev/null | grep -iE '^(pandas|numpy|statsmodels|fastapi|pydantic|kubernetes) '
	$(LATEST_VENV)/bin/python -m pytest -p no:cacheprovider $(LATEST_TESTS) $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: bench-casino bench-forecast bench-simulate bench-frontier bench-operator bench-observe bench-local

bench-casino: install
	$(PY) benchmarks/bench_casino.py

bench-forecast: install
	$(PY) benchmarks/bench_forecast.py
	OPENBLAS_NUM_THREADS=1 $(PY) benchmarks/bench_calendar_fit.py
	$(PY) benchmarks/bench_forecast_closure.py

bench-simulate: install
	$(PY) benchmarks/bench_simulate.py

## bench-frontier: every policy at defaults and over its knob on every trace, pitboss's frontier checked (issue 15)
bench-frontier: install
	$(PY) benchmarks/bench_frontier.py

bench-operator: install
	$(PY) benchmarks/bench_operator.py
	$(PY) benchmarks/bench_operator_cpu.py
	$(PY) benchmarks/bench_operator_shards.py
	$(PY) benchmarks/bench_native_threads.py
	$(PY) benchmarks/bench_shard_join.py --runs 3

bench-observe: install system-deps
	$(PY) benchmarks/bench_observe.py

bench-local: install
	$(PY) benchmarks/bench_local.py

## dashboards: regenerate the Grafana JSON, the kustomize component, the layout pictures and their doc tables
dashboards: install
	$(VENV)/bin/pitboss dashboards build --out dashboards/grafana --manifests manifests/components/dashboards \
		--images docs/img --docs docs/dashboards.md

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

## image: build the OCI image with buildah (debootstrap base cached, host-built wheels, offline RUN steps)
IMAGE ?= localhost/pitboss:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
IMAGE_CONSTRAINTS ?= $(LOCK)
.PHONY: image image-test chart-sync chart
image: install system-deps
	IMAGE=$(IMAGE) IMAGE_CONSTRAINTS=$(IMAGE_CONSTRAINTS) bash scripts/build-image.sh

## image-test: build the image, then run pitboss in it as 65532 on a read-only root (tests/image)
image-test: install system-deps
	$(PY) -m pytest -q tests/image

## chart-sync: copy CRDs, RBAC rules, Prometheus rules, dashboards and the casino example into the chart
chart-sync: install
	$(PY) scripts/sync_chart.py

## chart: check the chart's copies are current, then package it into dist/ (helm package, via helm-python-sdk)
chart: install
	$(PY) scripts/sync_chart.py --check
	$(PY) -c "import helm_python; print(helm_python.package('charts/pitboss', destination='dist'))"
