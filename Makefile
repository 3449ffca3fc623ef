# The two commands: `make demo` (the main job) and `make test` (the whole suite). See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
JARS   ?= $(HOME)/.cache/servicegraph/neo4j-jars
SIZE   ?= 2000
HOST   ?= 127.0.0.1
PORT   ?= 8000
DB     ?= .demo/servicegraph.db

.PHONY: demo test install lint pytest browser wrk neo4j-jars bench clean vendor-graphiql vendor-web notebook

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The GraphQL server on the embedded demo store (DB, kept across runs; the estate is loaded
## when it is empty) with an admin token and a curl line to paste.
demo: install
	$(VENV)/bin/servicegraph serve --demo --db $(DB) --demo-size $(SIZE) --host $(HOST) --port $(PORT)

## JupyterLab on notebooks/ with the project's venv (installs the optional `notebook` extra once).
notebook: install
	$(PY) -m pip install -q -e '.[dev,notebook]'
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=$(HOST)

## Lint, type-check, then run every test (starts and stops a real Neo4j 5.26).
test: install neo4j-jars browser lint pytest

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

pytest: install neo4j-jars
	SERVICEGRAPH_NEO4J_JARS=$(JARS) $(PY) -m pytest

## Debian's chromium for the browser tests (tests/test_web_ui.py), installed once when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

## wrk for the request-throughput benchmark, installed once when missing.
wrk:
	@command -v wrk >/dev/null 2>&1 || { echo "installing Debian's wrk for the benchmarks"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

neo4j-jars:
	@if ! ls $(JARS)/neo4j-harness-*.jar >/dev/null 2>&1; then \
		echo "fetching the Neo4j 5.26 test harness from Maven Central into $(JARS)"; \
		mvn -B -q -f tests/neo4j_server/pom.xml dependency:copy-dependencies -DoutputDirectory=$(JARS); \
	fi

## Benchmarks (print figures, assert nothing). The reported runs: BENCH_SIZES="100000 1000000".
BENCH_SIZES ?= 20000
bench: install neo4j-jars browser wrk
	$(PY) -m bench.engine --sizes $(BENCH_SIZES)
	$(PY) -m bench.availability --size $(firstword $(BENCH_SIZES))
	$(PY) -m bench.incidents --size $(lastword $(BENCH_SIZES))
	$(PY) -m bench.audit --size $(firstword $(BENCH_SIZES))
	$(PY) -m bench.web --size $(firstword $(BENCH_SIZES))
	$(PY) -m bench.throughput --size $(firstword $(BENCH_SIZES))
	$(PY) -m bench.projection --sizes $(BENCH_SIZES)
	$(PY) -m bench.results --size $(lastword $(BENCH_SIZES))
	SERVICEGRAPH_NEO4J_JARS=$(JARS) $(PY) -m bench.import_throughput --size $(lastword $(BENCH_SIZES))
	SERVICEGRAPH_NEO4J_JARS=$(JARS) $(PY) -m bench.import_cli --size $(lastword $(BENCH_SIZES))

## Refresh the GraphiQL files the server ships (pinned in web/graphiql/package.json + lock; needs npm).
GRAPHIQL_STATIC := src/servicegraph/api/static/graphiql
vendor-graphiql:
	cd web/graphiql && npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p $(GRAPHIQL_STATIC)
	cd web/graphiql/node_modules && cp graphiql/graphiql.min.js graphiql/graphiql.min.css \
		react/umd/react.production.min.js react-dom/umd/react-dom.production.min.js \
		js-cookie/dist/js.cookie.min.js $(CURDIR)/$(GRAPHIQL_STATIC)/
	cp web/graphiql/node_modules/@graphiql/plugin-explorer/dist/index.umd.js $(GRAPHIQL_STATIC)/plugin-explorer.umd.js
	cp web/graphiql/node_modules/@graphiql/plugin-explorer/dist/style.css $(GRAPHIQL_STATIC)/plugin-explorer.css
	for p in graphiql react react-dom js-cookie @graphiql/plugin-explorer; do \
		f=web/graphiql/node_modules/$$p/LICENSE; out=$(GRAPHIQL_STATIC)/LICENSE.$$(basename $$p); \
		if [ -f $$f ]; then cp $$f $$out; else \
		(echo "$$p is MIT licensed (its package.json; the package ships no LICENSE file)."; \
		 echo "It is by the GraphQL contributors, as GraphiQL; the MIT text:"; echo; \
		 cat web/graphiql/node_modules/graphiql/LICENSE) > $$out; fi; done

## Refresh the web map's library files (pinned in web/app/package.json + lock; needs npm).
WEB_VENDOR := src/servicegraph/api/static/vendor
vendor-web:
	cd web/app && npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p $(WEB_VENDOR)
	cp web/app/node_modules/cytoscape/dist/cytoscape.min.js \
		web/app/node_modules/cytoscape-dagre/dist/cytoscape-dagre.min.js $(WEB_VENDOR)/
	cp web/app/node_modules/cytoscape/LICENSE $(WEB_VENDOR)/LICENSE.cytoscape
	cp web/app/node_modules/cytoscape-dagre/LICENSE $(WEB_VENDOR)/LICENSE.cytoscape-dagre
	cp web/app/node_modules/@dagrejs/dagre/LICENSE $(WEB_VENDOR)/LICENSE.dagre

clean:
	rm -rf $(VENV) .demo servicegraph.db servicegraph.db-wal servicegraph.db-shm
