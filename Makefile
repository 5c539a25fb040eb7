# MoMo Guard. `make` lists the targets. Every target sets up what it needs itself.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .run/tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# The broker, for every target: `make <target> KAFKA_BOOTSTRAP=host:port` (or MOMOGUARD_KAFKA_BOOTSTRAP in the
# environment or .env; KAFKA_BOOTSTRAP wins). Every command below reads it as MOMOGUARD_KAFKA_BOOTSTRAP; a local
# broker (kafka-up, test, demo) is started on that port, with its own data under .run/kafka.
ifdef KAFKA_BOOTSTRAP
export MOMOGUARD_KAFKA_BOOTSTRAP := $(KAFKA_BOOTSTRAP)
endif
BOOTSTRAP_IN_FORCE = $(BIN)/python -c "from core.settings import Settings; print(Settings().kafka_bootstrap)"

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11+" >&2; exit 1; }
	@$(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@$(UV) sync --frozen --quiet --python $(PYTHON)
	@touch $@

.PHONY: setup
setup: $(VENV)/.synced ## Create the virtual environment with the locked dependencies (fast when done)

.PHONY: lock
lock: | $(UV) ## Re-resolve uv.lock after changing pyproject.toml
	$(UV) lock --python $(PYTHON)

.PHONY: kafka-up
kafka-up: setup ## Start the local Kafka broker (KRaft, 127.0.0.1) and create the topics
	@$(BIN)/momoguard kafka up

.PHONY: kafka-down
kafka-down: setup ## Stop the local Kafka broker started by kafka-up
	@$(BIN)/momoguard kafka down

.PHONY: kafka-status
kafka-status: setup ## Show the bootstrap address, broker version and topics
	@$(BIN)/momoguard kafka status

.PHONY: topics
topics: setup ## Create the topics (idempotent)
	@$(BIN)/momoguard topics create

.PHONY: schemas
schemas: setup ## Rewrite the JSON Schema files in schemas/
	@$(BIN)/python -m schemas.json_schema

.PHONY: docs
docs: setup ## Refresh generated docs (the README's settings table, the JSON Schemas)
	@$(BIN)/python -m core.settings_table
	@$(BIN)/python -m schemas.json_schema

.PHONY: serve
serve: kafka-up ## Run the scorer (WORKERS=N worker processes; needs a champion: make train)
	@$(BIN)/momoguard serve --workers $(or $(WORKERS),1)

.PHONY: train
train: setup ## Train on ~1M generated rows, register, promote if it beats the champion (ARGS="--rows N" or a CSV)
	@$(BIN)/momoguard train $(ARGS)

# `make schedule` needs a Prefect server: it uses the one at PREFECT_API_URL, or starts one on 127.0.0.1
# (data under .run/prefect; in its own session, so Ctrl-C stops the serving first) and stops it afterwards.
PREFECT_PORT ?= 4200
PREFECT_API_URL ?= http://127.0.0.1:$(PREFECT_PORT)/api
PREFECT_UP = $(BIN)/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/health', timeout=2)" $(PREFECT_API_URL) 2>/dev/null

.PHONY: schedule
schedule: setup ## Serve the retrain flow on MOMOGUARD_RETRAIN_CRON (starts a local Prefect server if none answers)
	@export PREFECT_API_URL=$(PREFECT_API_URL); \
	if ! $(PREFECT_UP); then \
	  mkdir -p .run/prefect; \
	  PREFECT_HOME=$(CURDIR)/.run/prefect setsid $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) \
	    > .run/prefect/server.log 2>&1 & server=$$!; \
	  trap 'kill $$server 2>/dev/null; wait $$server 2>/dev/null' EXIT; \
	  echo "started a Prefect server (pid $$server, log .run/prefect/server.log)"; \
	  for i in $$(seq 120); do $(PREFECT_UP) && break; sleep 1; done; \
	  $(PREFECT_UP) || { echo "error: the Prefect server did not answer in 120 s" >&2; exit 1; }; \
	fi; \
	$(BIN)/momoguard train --serve $(ARGS)

.PHONY: bench-generate
bench-generate: setup ## Time a Kaggle-size generated month on one core (writes reports/bench-generate.json)
	$(BIN)/python -m benchmarks.generator

.PHONY: demo
demo: setup ## The main job end to end: broker, model (trained if none), scorer, replay of 50,000 transactions
	@$(BIN)/momoguard demo $(ARGS)

.PHONY: demo-down
demo-down: setup ## Stop the scorer and the broker that `make demo` started
	@$(BIN)/momoguard demo --down

.PHONY: champion
champion: setup ## Train a model unless the registry already has a champion
	@$(BIN)/python -c "import sys; from core.settings import Settings; from registry.versions import champion_version; sys.exit(champion_version(Settings()) is None)" 2>/dev/null || $(MAKE) --no-print-directory train

.PHONY: replay
replay: kafka-up ## Load test: replay transactions (ARGS="--rate 1000 --rows 100000") against a running scorer
	@$(BIN)/momoguard replay $(ARGS)

.PHONY: bench
bench: kafka-up champion ## Benchmark scorer vs baseline, latency, model and generator (reports/bench.json)
	@$(BIN)/momoguard bench $(ARGS)

.PHONY: lint
lint: setup ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# System tools the observability tests run: promtool and prometheus (Debian's `prometheus`), headless chromium
# (with a font, so the dashboard screenshot has text). Installed only when missing; without apt-get, fail: CI
# must fail rather than skip those tests.
TEST_DEBS_PROMETHEUS := prometheus
TEST_DEBS_CHROMIUM := chromium fonts-liberation

.PHONY: test-deps
test-deps: ## Install the system tools the tests use (promtool, prometheus, chromium) when missing
	@missing=""; \
	{ command -v promtool && command -v prometheus; } >/dev/null || missing="$$missing $(TEST_DEBS_PROMETHEUS)"; \
	command -v chromium >/dev/null || missing="$$missing $(TEST_DEBS_CHROMIUM)"; \
	if [ -n "$$missing" ]; then \
	  command -v apt-get >/dev/null || { echo "error: need$$missing (promtool, prometheus, chromium) and apt-get is not available: install them" >&2; exit 1; }; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  echo "installing$$missing with apt-get"; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; } >/dev/null \
	    || { echo "error: apt-get install$$missing failed (needs root or passwordless sudo)" >&2; exit 1; }; \
	fi

.PHONY: test
test: setup test-deps ## Run the test suite against a real local broker (started and stopped here)
	@export MOMOGUARD_TEST_BOOTSTRAP=$$($(BOOTSTRAP_IN_FORCE)); \
	trap '$(BIN)/momoguard kafka down' EXIT; \
	$(BIN)/momoguard kafka up; \
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: clean
clean: ## Stop the broker and remove the run folder (broker data, local registry)
	-@$(BIN)/momoguard kafka down 2>/dev/null
	rm -rf .run/kafka .run/mlflow.db .run/mlartifacts
