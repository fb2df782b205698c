# podnet — the two commands of the README: `make demo` and `make test`.
# Both do their own set-up on a fresh Debian 12 machine as root.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
# Python trees that ruff checks.
PY_TREES := podnet tests benchmarks scripts

.PHONY: demo test setup system lint typecheck unit net bench-cni clean ui

# The web UI's front end: npm ci + build of ui/ into podnet/ui/static (served by `podnet ui`).
UI_STAMP := podnet/ui/static/.built
UI_SOURCES := $(shell find ui/src -type f 2>/dev/null) ui/index.html ui/package.json ui/package-lock.json \
	ui/vite.config.ts ui/tsconfig.json scripts/build-ui.sh

$(STAMP): pyproject.toml scripts/bootstrap.sh scripts/debian-packages.txt
	bash scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

$(UI_STAMP): $(STAMP) $(UI_SOURCES)
	bash scripts/build-ui.sh

setup: $(STAMP) $(UI_STAMP)

lint: setup
	$(BIN)/ruff check $(PY_TREES)
	$(BIN)/ruff format --check $(PY_TREES)

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q tests/unit

test: setup
	$(BIN)/ruff check $(PY_TREES)
	$(BIN)/ruff format --check $(PY_TREES)
	$(BIN)/mypy
	$(BIN)/pytest -q tests

net: setup
	$(BIN)/pytest -q tests/net

bench-cni: setup
	$(BIN)/python benchmarks/cni_latency.py --pods 100

ui: setup
	$(BIN)/podnet ui

demo: setup
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache ui/node_modules podnet/ui/static
