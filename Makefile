# tradingbot-operator — every target sets up what it needs (virtualenv, dependencies, test assets).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
# make test's parallel workers (pytest-xdist): each starts its own control plane and database. Most tests wait
# on processes, so three share two cores well; TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 3

.PHONY: help run install assets test unit lint fmt crds bench-runtime bench-fleet clean \
        kind-up image kind-load deploy e2e-kind kind-down

help:
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml examples/strategy-plugin/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,charts]'
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
	  KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

unit: $(INSTALLED) ## the pure tests only (tests/unit): seconds, no control plane, no database
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(INSTALLED) ## ruff (lint and format), mypy, the import layers (import-linter), checkov (chart, bot objects, Dockerfile)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python hack/checkov.py

fmt: $(INSTALLED) ## fix what ruff can and format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

crds: $(INSTALLED) ## regenerate crds/ and the chart's copy from the pydantic models
	$(BIN)/python hack/gen-crds.py

bench-runtime: $(INSTALLED) ## runtime memory, idle CPU per minute, backtest bars/s (prints numbers)
	@assets=$$(hack/test-assets.sh) && KUBEBUILDER_ASSETS="$$assets" $(BIN)/python hack/bench-runtime.py

N ?= 1000
bench-fleet: $(INSTALLED) ## N rows -> pods time, apiserver writes per bot, idle cost, edit latency (N=1000)
	@assets=$$(hack/test-assets.sh) && KUBEBUILDER_ASSETS="$$assets" N=$(N) $(BIN)/python hack/bench-fleet.py

# ---- the kind path (needs Docker, kind, kubectl and helm; none of it runs in CI here) ----
KIND_CLUSTER ?= tradingbot
IMAGE_REPO ?= tradingbot-operator
IMAGE_TAG ?= dev
KUBECTL_KIND = kubectl --context kind-$(KIND_CLUSTER)

kind-up: ## create a kind cluster (hack/kind-config.yaml)
	kind create cluster --name $(KIND_CLUSTER) --config hack/kind-config.yaml

image: ## build the operator/runtime image with Docker
	docker build -t $(IMAGE_REPO):$(IMAGE_TAG) .

kind-load: image ## load the image into the kind nodes
	kind load docker-image $(IMAGE_REPO):$(IMAGE_TAG) --name $(KIND_CLUSTER)

deploy: kind-load ## in-cluster PostgreSQL example + helm install of the operator into kind
	$(KUBECTL_KIND) apply -f hack/kind-postgres.yaml
	$(KUBECTL_KIND) -n botops rollout status deploy/postgres --timeout=180s
	helm upgrade --install tradingbot-operator helm/tradingbot-operator --kube-context kind-$(KIND_CLUSTER) \
	  --namespace botops --create-namespace -f hack/kind-values.yaml \
	  --set image.repository=$(IMAGE_REPO) --set image.tag=$(IMAGE_TAG) --wait --timeout 5m

e2e-kind: deploy ## a paper bot on the synthetic feed must become Ready in kind
	$(KUBECTL_KIND) -n botops apply -f examples/paper-rsi-trailing-stop.yaml
	$(KUBECTL_KIND) -n botops wait --for=condition=Ready tb/paper-rsi-trailing-stop --timeout=300s
	$(KUBECTL_KIND) -n botops get tb

kind-down: ## delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
