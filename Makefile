# Escalation Ledger. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA_LIBS := infra/local/kafka/libs/.complete

.DEFAULT_GOAL := help
.PHONY: help run test test-cluster lint typecheck check bench kafka-jars clean browser screenshots

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

$(KAFKA_LIBS): infra/local/kafka/pom.xml
	cd infra/local/kafka && mvn -q -B dependency:copy-dependencies
	touch $(KAFKA_LIBS)

kafka-jars: $(KAFKA_LIBS) ## Download the Apache Kafka broker's jars from Maven Central (once)

run: $(STAMP) ## Run the main job: the demo on the embedded broker and SQLite
	$(BIN)/escalations demo

test: $(STAMP) $(KAFKA_LIBS) browser ## Install everything, start Kafka and PostgreSQL, run every test, stop them
	$(BIN)/pytest

test-cluster: $(STAMP) $(KAFKA_LIBS) ## Only the three-broker cluster tests (faults, SASL_SSL, replication)
	$(BIN)/pytest -m cluster

browser: ## Install Debian's chromium and chromium-driver for the browser tests (when missing and root)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium chromium-driver; \
	else echo "chromium/chromedriver missing: run 'sudo apt-get install chromium chromium-driver' (browser tests fail without them)"; fi

screenshots: $(STAMP) browser ## Regenerate the README's dashboard screenshots (docs/images) with the browser tests
	DASHBOARD_SCREENSHOTS=docs/images $(BIN)/pytest tests/browser -q

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

check: lint typecheck ## lint and type-check

bench: $(STAMP) $(KAFKA_LIBS) ## Benchmarks against the raw stack (FULL=1 for the 1M-event rebuild)
	$(BIN)/python -m bench $(if $(FULL),--full,)

clean: ## Remove the virtualenv, downloaded jars and local data
	rm -rf $(VENV) infra/local/kafka/libs var
