# MicroCommerce — developer commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PY := .venv/bin/python
INFRA := infrastructure/local/infra.sh
SERVICES := $(PY) infrastructure/local/services.py
PYTEST_ARGS ?=

.PHONY: rebuild-analytics rebuild-projections status migrate tools help venv generate check-generated validate-specs lint format test test-unit \
        infra-up infra-down infra-status up down clean

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(UV):
	@echo "uv not found: installing it with pip (user site, ~/.local/bin)"
	python3 -m pip install --quiet --user uv 2>/dev/null || \
	  python3 -m pip install --quiet --user --break-system-packages uv

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

venv: .venv/.synced ## Create or update the Python environment (uv, from uv.lock)

generate: venv ## Regenerate generated/ and the deployment files from specs/
	$(PY) -m generator generate

check-generated: venv ## Fail with a diff when generated output is stale
	$(PY) -m generator check

validate-specs: venv ## Validate and cross-check every spec without writing
	$(PY) -m generator validate

# spec-diff compares the working tree's specs with BASE (origin/main when it exists, else main).
BASE ?= $(shell git rev-parse --verify --quiet origin/main >/dev/null && echo origin/main || echo main)
SPEC_DIFF_FORMAT ?= markdown
.PHONY: spec-diff
spec-diff: venv ## Classify spec changes since BASE=<ref> as breaking/compatible (ALLOW_BREAKING=1 to pass)
	$(PY) -m generator spec-diff --base $(BASE) --format $(SPEC_DIFF_FORMAT) \
	  $(if $(filter 1 true yes,$(ALLOW_BREAKING)),--allow-breaking)

lint: venv ## ruff + mypy --strict on generator and handwritten code
	$(PY) -m ruff check generator handwritten tests infrastructure bench
	$(PY) -m ruff format --check generator handwritten tests infrastructure bench
	$(PY) -m mypy generator handwritten infrastructure bench

format: venv ## Apply ruff fixes and formatting
	$(PY) -m ruff check --fix generator handwritten tests infrastructure bench
	$(PY) -m ruff format generator handwritten tests infrastructure bench

infra-up: venv ## Install (first time) and start PostgreSQL, Redis and Kafka locally
	bash $(INFRA) up

infra-down: ## Stop the local infrastructure
	bash $(INFRA) down

infra-status: ## Show what is running
	bash $(INFRA) status

tools: ## Debian tools some tests run (luajit for the gateway's Lua)
	@command -v luajit >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq luajit >/dev/null; }

test-unit: venv tools ## Tests that need no infrastructure
	$(PY) -m pytest tests/unit tests/generator $(PYTEST_ARGS)

test: venv tools infra-up ## The whole suite on real PostgreSQL, Redis and Kafka (restarts the stack)
	$(SERVICES) down
	$(SERVICES) up
	$(PY) -m pytest $(PYTEST_ARGS)

# Contract fuzzing (tests/contract): cases per operation and stateful scenarios per API.
# `make test` runs the same suite with a small, derandomized budget.
FUZZ_EXAMPLES ?= 500
FUZZ_REPORTS := .local/reports/fuzz
.PHONY: fuzz
fuzz: venv infra-up ## Fuzz every API through the gateway (random, FUZZ_EXAMPLES=500); junit + ndjson in .local/reports/fuzz
	$(SERVICES) up
	@mkdir -p $(FUZZ_REPORTS)
	MC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) MC_FUZZ_RANDOM=1 MC_FUZZ_REPORT_DIR=$(FUZZ_REPORTS) \
	  $(PY) -m pytest tests/contract -o timeout=0 -o junit_family=xunit1 --junitxml=$(FUZZ_REPORTS)/junit.xml $(PYTEST_ARGS)

# The soak's size: orders and seconds of load per fault segment (and per scenario).
CHAOS_ORDERS ?= 60
CHAOS_DURATION ?= 30
.PHONY: chaos
chaos: venv infra-up ## Chaos: every fault scenario at scale and the long soak (CHAOS_ORDERS, CHAOS_DURATION)
	$(SERVICES) up
	CHAOS_ORDERS=$(CHAOS_ORDERS) CHAOS_DURATION=$(CHAOS_DURATION) \
	  $(PY) -m pytest tests/chaos/test_*.py tests/chaos/soak.py -o timeout=3600 $(PYTEST_ARGS)

# Load generator: arrivals per second and seconds of traffic (LOAD_ARGS: --mix, --tokens, --users…).
RATE ?= 5
DURATION ?= 60
LOAD_ARGS ?=
.PHONY: load bench
load: venv infra-up ## Realistic traffic through the gateway, summary in .local/bench (RATE=5 DURATION=60)
	$(SERVICES) up
	$(PY) -m bench.load --rate $(RATE) --duration $(DURATION) $(LOAD_ARGS)

# BENCH_ARGS: suites to run and --quick; BENCH_UP_TIME=services|full|skip (see bench/README.md).
BENCH_ARGS ?=
bench: venv infra-up ## Benchmarks side by side (~15 min), results in bench/results/ (restarts the services)
	$(SERVICES) up
	$(PY) -m bench $(BENCH_ARGS)

up: infra-up ## Start the whole local stack: infrastructure, services, gateway on :8000
	$(SERVICES) up

down: ## Stop the services and the local infrastructure
	-$(SERVICES) down
	-bash $(PROMETHEUS) down
	bash $(INFRA) down

status: venv ## What is running
	bash $(INFRA) status
	$(SERVICES) status
	bash $(PROMETHEUS) status

PROMETHEUS := infrastructure/observability/local-prometheus.sh
.PHONY: prometheus prometheus-down
prometheus: venv ## Prometheus (Debian package, installed if missing) scraping the local stack on :9090
	bash $(PROMETHEUS) up

prometheus-down: ## Stop the local Prometheus
	bash $(PROMETHEUS) down

rebuild-projections: venv infra-up ## Rebuild the orders_view read model from the event store
	$(PY) -m handwritten.orders rebuild-projections

rebuild-analytics: venv infra-up ## Rebuild the analytics tables from the Kafka topics (stop the analytics service first: embedded chdb has one owner)
	$(PY) -m handwritten.analytics rebuild

migrate: venv infra-up ## Apply every service's pending SQL migrations
	$(SERVICES) migrate

clean: ## Remove the environment and all local data (.local)
	-$(SERVICES) down
	-bash $(PROMETHEUS) down
	-bash $(INFRA) down
	rm -rf .venv .local .pytest_cache .mypy_cache .ruff_cache
