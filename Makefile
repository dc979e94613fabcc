# Pitboss: every target sets itself up on a fresh machine (venv, packages).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell md5sum pyproject.toml | cut -c1-8)
PYTEST_ARGS ?=

.PHONY: install system-deps demo test lint bench bench-casino bench-forecast \
        bench-simulate bench-operator bench-observe bench-local clean dashboards

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

system-deps:
	@bash scripts/ensure-system-deps.sh

## demo: run the main job on the embedded defaults (no services needed)
demo: install
	$(VENV)/bin/pitboss demo

## test: every test, against real PostgreSQL, Redis, Prometheus and Alertmanager
test: install system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: bench-casino bench-forecast bench-simulate bench-operator bench-observe bench-local

bench-casino: install
	$(PY) benchmarks/bench_casino.py

bench-forecast: install
	$(PY) benchmarks/bench_forecast.py

bench-simulate: install
	$(PY) benchmarks/bench_simulate.py

bench-operator: install
	$(PY) benchmarks/bench_operator.py

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
IMAGE_CONSTRAINTS ?= scripts/image/constraints.txt
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
