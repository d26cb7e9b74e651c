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

lint: venv ## ruff + mypy --strict on generator and handwritten code
	$(PY) -m ruff check generator handwritten tests infrastructure
	$(PY) -m ruff format --check generator handwritten tests infrastructure
	$(PY) -m mypy generator handwritten infrastructure

format: venv ## Apply ruff fixes and formatting
	$(PY) -m ruff check --fix generator handwritten tests infrastructure
	$(PY) -m ruff format generator handwritten tests infrastructure

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

up: infra-up ## Start the whole local stack: infrastructure, services, gateway on :8000
	$(SERVICES) up

down: ## Stop the services and the local infrastructure
	-$(SERVICES) down
	bash $(INFRA) down

status: venv ## What is running
	bash $(INFRA) status
	$(SERVICES) status

rebuild-projections: venv infra-up ## Rebuild the orders_view read model from the event store
	$(PY) -m handwritten.orders rebuild-projections

rebuild-analytics: venv infra-up ## Rebuild the analytics tables from the Kafka topics (stop the analytics service first: embedded chdb has one owner)
	$(PY) -m handwritten.analytics rebuild

migrate: venv infra-up ## Apply every service's pending SQL migrations
	$(SERVICES) migrate

clean: ## Remove the environment and all local data (.local)
	-$(SERVICES) down
	-bash $(INFRA) down
	rm -rf .venv .local .pytest_cache .mypy_cache .ruff_cache
