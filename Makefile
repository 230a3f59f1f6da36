# tradingbot-operator — every target sets up what it needs (virtualenv, dependencies, test assets).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help run install assets test lint fmt crds bench-runtime bench-operator clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml examples/strategy-plugin/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps -e examples/strategy-plugin  # the plug-in the registry tests discover
	@touch $@

run: $(INSTALLED) ## the demo fleet: control plane, PostgreSQL, operator, local node, two bots (Ctrl+C stops)
	@if [ -n "$$KUBECONFIG" ]; then $(BIN)/python -m botops_dev.demo; \
	else assets=$$(hack/test-assets.sh) && KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m botops_dev.demo; fi

install: $(INSTALLED) ## create .venv and install the project with its test tools

assets: ## build or locate the test control plane binaries (KUBEBUILDER_ASSETS)
	@hack/test-assets.sh

test: $(INSTALLED) ## run every test against a real control plane and PostgreSQL
	@assets=$$(hack/test-assets.sh) && \
	  KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(INSTALLED)
	$(BIN)/ruff check --fix .

crds: $(INSTALLED) ## regenerate crds/ and the chart's copy from the pydantic models
	$(BIN)/python hack/gen-crds.py

bench-runtime: $(INSTALLED) ## runtime memory, idle CPU per minute, backtest bars/s (prints numbers)
	@assets=$$(hack/test-assets.sh) && KUBEBUILDER_ASSETS="$$assets" $(BIN)/python hack/bench-runtime.py

bench-operator: $(INSTALLED) ## 200 rows -> pods time, API writes per idle poll, operator memory
	@assets=$$(hack/test-assets.sh) && KUBEBUILDER_ASSETS="$$assets" $(BIN)/python hack/bench-operator.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
