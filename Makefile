# Pitboss: every target sets itself up on a fresh machine (venv, packages).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell md5sum pyproject.toml | cut -c1-8)
PYTEST_ARGS ?=

.PHONY: install system-deps demo test lint bench bench-casino bench-forecast \
        bench-simulate bench-frontier bench-operator bench-observe bench-local clean dashboards

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

bench: bench-casino bench-forecast bench-simulate bench-frontier bench-operator bench-observe bench-local

bench-casino: install
	$(PY) benchmarks/bench_casino.py

bench-forecast: install
	$(PY) benchmarks/bench_forecast.py

bench-simulate: install
	$(PY) benchmarks/bench_simulate.py

## bench-frontier: every policy at defaults and over its knob on every trace, pitboss's frontier checked (issue 15)
bench-frontier: install
	$(PY) benchmarks/bench_frontier.py

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
