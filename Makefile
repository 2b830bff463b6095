# Meterline: usage metering, rating and invoicing.  `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/meterline: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --quiet
	@touch $@

.PHONY: install
install: $(BIN)/meterline web ## Create the virtualenv from uv.lock, fetch the Kafka jars, build the dashboard's JS
	@$(BIN)/python -m infra.kafka_local fetch >/dev/null

# The dashboard's browser libraries (Chart.js), pinned by web/package-lock.json and
# served by the API from its static dir: no CDN at run time.
DASHBOARD_VENDOR := api/dashboard/static/vendor

.PHONY: web
web: $(DASHBOARD_VENDOR)/chart.umd.js ## Build the dashboard's JS (npm ci in web/, copied into the API's static dir)

$(DASHBOARD_VENDOR)/chart.umd.js: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(DASHBOARD_VENDOR)
	cp web/node_modules/chart.js/dist/chart.umd.js $@

.PHONY: demo
demo: install ## The whole pipeline on the embedded default: 100,000 events to invoices
	$(BIN)/meterline demo

.PHONY: test
test: install ## Run the test suite (starts a real Kafka broker; PostgreSQL too when possible)
	@infra/tools.sh kcat chromium chromedriver
	@infra/ubl_schemas.sh >/dev/null  # the UBL 2.1 XSDs of the document tests
	@if infra/postgres.sh start >/dev/null; then \
	  export METERLINE_TEST_POSTGRES_URL="$$(infra/postgres.sh url)"; \
	else echo "PostgreSQL unavailable: ledger tests run on SQLite only" >&2; fi; \
	$(BIN)/pytest -q

.PHONY: test-fast
test-fast: install ## The pure tests only: no Kafka, ClickHouse, ledger or end-to-end stack
	$(BIN)/pytest -q -m "not kafka and not clickhouse and not ledger and not e2e"

.PHONY: lint
lint: install ## ruff (lint + format check), mypy --strict, the layer contracts (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: up
up: install ## Start a local Kafka broker (9092) and PostgreSQL (54329) in the background
	$(BIN)/python -m infra.kafka_local start
	infra/postgres.sh start

.PHONY: down
down: ## Stop what `make up` started
	-$(BIN)/python -m infra.kafka_local stop
	-infra/postgres.sh stop

.PHONY: serve
serve: install ## Embedded server: Kafka + API + stream worker on http://127.0.0.1:8080
	$(BIN)/meterline serve

.PHONY: bench
bench: bench-ingest bench-billrun bench-webhooks ## All benchmarks; results go to bench/RESULTS.md

.PHONY: bench-csv
bench-csv: install ## Invoice CSV export of 1,000,000 lines: server memory and time against a plain SELECT
	$(BIN)/python -m bench.csv_export

.PHONY: bench-analytics
bench-analytics: install ## Revenue analytics over 100,000 customers and 1,000,000 invoices (SQLite) against a plain scan
	$(BIN)/python -m bench.analytics

.PHONY: bench-entitlements
bench-entitlements: install ## Customer entitlements read: p99 per request against GET /healthz and a one-row read
	$(BIN)/python -m bench.entitlements

.PHONY: bench-webhooks
bench-webhooks: install ## Webhook soak: 10,000 events to 3 endpoints (one flaky), kill -9 of the worker midway
	$(BIN)/python -m bench.webhooks

.PHONY: bench-ingest
bench-ingest: install ## Ingest throughput over HTTP through Kafka into ClickHouse
	$(BIN)/python -m bench.ingest

# The PostgreSQL ledger: $METERLINE_BENCH_POSTGRES_URL, else the local server of
# infra/postgres.sh, started here when nothing listens on its port.
.PHONY: bench-billrun
bench-billrun: install ## Bill run of 100,000 subscriptions over 5 metrics, SQLite and PostgreSQL ledgers
	@if [[ -z "$${METERLINE_BENCH_POSTGRES_URL:-}" ]] && ! (exec 3<>/dev/tcp/127.0.0.1/54329) 2>/dev/null; then \
	  infra/postgres.sh start >/dev/null; fi
	$(BIN)/python -m bench.billrun

.PHONY: clean
clean: ## Remove local data (.meterline) and caches (not the Kafka jars)
	rm -rf .meterline .pytest_cache .mypy_cache .ruff_cache
