# Escalation Ledger. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA_LIBS := infra/local/kafka/libs/.complete
ASYNCAPI_SPECS := tests/support/asyncapi-specs/.complete
ASYNCAPI_SPECS_VERSION := 6.11.1

.DEFAULT_GOAL := help
.PHONY: help run test test-cluster lint typecheck check bench kafka-jars asyncapi-specs clean browser screenshots mutation mutation-recheck

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

# The AsyncAPI specification's own JSON Schema (Apache-2.0), from its npm package @asyncapi/specs.
$(ASYNCAPI_SPECS):
	rm -rf $(@D) && mkdir -p $(@D)
	cd $(@D) && npm pack -q @asyncapi/specs@$(ASYNCAPI_SPECS_VERSION) >/dev/null \
		&& tar xzf asyncapi-specs-$(ASYNCAPI_SPECS_VERSION).tgz package/LICENSE 'package/schemas/3.0.0-without-$$id.json' \
		&& mv package/LICENSE package/schemas/* . && rm -rf package *.tgz
	touch $(ASYNCAPI_SPECS)

asyncapi-specs: $(ASYNCAPI_SPECS) ## Download the AsyncAPI 3.0 JSON Schema the tests validate our document with (once)

run: $(STAMP) ## Run the main job: the demo on the embedded broker and SQLite
	$(BIN)/escalations demo

test: $(STAMP) $(KAFKA_LIBS) $(ASYNCAPI_SPECS) browser ## Install everything, start Kafka and PostgreSQL, run every test, stop them
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

# mutmut mutates domain/ and projections/ in a copy (mutants/) and runs tests/unit against each mutant.
# The tests run in a zone far from UTC (+12:45/+13:45), so a mutant that reads the machine's zone is caught.
# MUTANTS narrows the run to mutant names (e.g. MUTANTS='projections.facts*'); MUTATION_JOBS caps the workers.
MUTANTS ?=
MUTATION_JOBS ?= $(shell nproc)
mutation: $(STAMP) ## Mutation-test domain/ and projections/; print the score and the survivors
	@# mutmut keeps, from its last run, which tests reach which function and each mutant's verdict;
	@# after the tests change both are stale (survivors that today's tests kill). Start afresh.
	rm -rf mutants
	TZ=Pacific/Chatham HYPOTHESIS_PROFILE=mutation bash -o pipefail -c "nice -n 19 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS) | grep -v '^🎉'"
	$(BIN)/python tests/support/mutation_score.py

mutation-recheck: $(STAMP) ## Re-run only the last `make mutation`'s survivors against today's tests
	@# For tests added since that run, with domain/ and projections/ unchanged (a changed function's
	@# mutants are new ones). The map of which tests reach which function is made afresh first.
	rm -f mutants/mutmut-stats.json
	names="$$($(BIN)/python tests/support/mutation_score.py --survivors)"; \
	  if [ -n "$$names" ]; then TZ=Pacific/Chatham HYPOTHESIS_PROFILE=mutation nice -n 19 $(BIN)/mutmut run \
	  --max-children $(MUTATION_JOBS) $$names | grep -v '^🎉'; fi
	$(BIN)/python tests/support/mutation_score.py

clean: ## Remove the virtualenv, downloaded jars and local data
	rm -rf $(VENV) infra/local/kafka/libs tests/support/asyncapi-specs var mutants
