# Canh Gác. `make run` starts a local collector + agent; `make test` runs every check.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run demo reset-demo i18n i18n-check test test-deps lint typecheck proto proto-check docs dashboards unit integration bench fuzz deb msi clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[agent,collector,dev]'
	touch $(STAMP)

## run: collector on SQLite under ./var + a local agent every 15 s; Ctrl-C stops both
## (ports taken? make run GRPC_PORT=14317 HTTP_PORT=19108)
run: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" scripts/run-local.sh

## demo: `make run` plus a simulated Hạ Lang district (60 machines), its data under ./var/demo
demo: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" DEMO=1 scripts/run-local.sh

## reset-demo: forget the demo's machines and history (./var/demo); `make run`'s ./var stays
reset-demo:
	rm -rf var/demo

## test: lint, types, generated-code drift, then the whole suite
test: $(STAMP) test-deps lint typecheck proto-check i18n-check
	$(BIN)/pytest -q

test-deps:
	@scripts/install-test-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## proto: regenerate the wire code after editing proto/canhgac_proto/v1/*.proto
proto: $(STAMP)
	PYTHON=$(BIN)/python proto/generate.sh

## docs / dashboards: regenerate docs/metrics.md, canhgac_common/agent.schema.json and configs/grafana/dashboards/*.json
docs: $(STAMP)
	$(BIN)/python -m scripts.metrics_doc
	$(BIN)/python -m scripts.agent_schema

dashboards: $(STAMP)
	$(BIN)/python -m scripts.dashboards

proto-check: $(STAMP)
	PYTHON=$(BIN)/python proto/generate.sh --check

## i18n: extract the CLIs' messages, merge them into the .po catalogs, compile the .mo files
i18n: $(STAMP)
	PYTHON=$(BIN)/python scripts/i18n.sh

i18n-check: $(STAMP)
	PYTHON=$(BIN)/python scripts/i18n.sh --check

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

## fuzz: wire decoding on both sides fed mutated bytes, >= 10^5 cases (FUZZ_SCALE=N for more), ~4 min
fuzz: $(STAMP)
	timeout 600 nice $(BIN)/pytest -q -s -m fuzz --durations=0 tests/fuzz

## bench: every benchmark, each against a baseline measured in the same run (docs/performance.md)
bench: $(STAMP)
	@scripts/install-test-deps.sh
	$(BIN)/python -m bench

## deb: dist/canhgac-agent_*.deb and dist/canhgac-collector_*.deb (docs/install.md), ~2 min
deb:
	OUT=$(CURDIR)/dist packaging/deb/build.sh

## msi: dist/canhgac-agent-VERSION.msi, frozen under wine (downloads cached in .cache/windows), ~1 min;
## signed by osslsigncode when SIGN_CERT and SIGN_KEY (PEM) are set (docs/windows.md)
msi: $(STAMP)
	OUT=$(CURDIR)/dist PIP=$(CURDIR)/$(BIN)/pip packaging/windows/build.sh

clean:
	rm -rf $(VENV) var dist .mypy_cache .ruff_cache .pytest_cache
