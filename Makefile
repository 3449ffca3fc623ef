# The two commands: `make demo` (the main job) and `make test` (the whole suite). See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
JARS   ?= $(HOME)/.cache/servicegraph/neo4j-jars
SIZE   ?= 2000
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: demo test install lint pytest neo4j-jars bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The GraphQL server on a fresh embedded store with the demo estate (prints an admin token).
demo: install
	$(VENV)/bin/servicegraph serve --demo --demo-size $(SIZE) --host $(HOST) --port $(PORT)

## Lint, type-check, then run every test (starts and stops a real Neo4j 5.26).
test: install neo4j-jars lint pytest

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

pytest: install neo4j-jars
	SERVICEGRAPH_NEO4J_JARS=$(JARS) $(PY) -m pytest

neo4j-jars:
	@if ! ls $(JARS)/neo4j-harness-*.jar >/dev/null 2>&1; then \
		echo "fetching the Neo4j 5.26 test harness from Maven Central into $(JARS)"; \
		mvn -B -q -f tests/neo4j_server/pom.xml dependency:copy-dependencies -DoutputDirectory=$(JARS); \
	fi

## Benchmarks (print figures, assert nothing). The reported runs: BENCH_SIZES="100000 1000000".
BENCH_SIZES ?= 20000
bench: install neo4j-jars
	$(PY) -m bench.engine --sizes $(BENCH_SIZES)
	SERVICEGRAPH_NEO4J_JARS=$(JARS) $(PY) -m bench.import_throughput --size $(lastword $(BENCH_SIZES))

clean:
	rm -rf $(VENV) servicegraph.db servicegraph.db-wal servicegraph.db-shm
