# One command per job; each sets up what it needs on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_SECRET ?= demo-secret-change-me
PORT ?= 8080

.PHONY: install run test check bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@echo "mxbridge listens on http://127.0.0.1:$(PORT)/webhooks/maintainx (store: examples/mxbridge.db)"
	@echo "send it a test event from another terminal:"
	@echo "  MAINTAINX_WEBHOOK_SECRET=$(DEMO_SECRET) $(BIN)/mxbridge send-test workorder.created --config examples/mxbridge.toml --port $(PORT)"
	@echo "then: $(BIN)/mxbridge events list --config examples/mxbridge.toml"
	MAINTAINX_WEBHOOK_SECRET=$${MAINTAINX_WEBHOOK_SECRET:-$(DEMO_SECRET)} \
		$(BIN)/mxbridge serve --config examples/mxbridge.toml --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest -q

check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk, the edge benchmark's load generator"; \
		apt-get install -y wrk || sudo apt-get install -y wrk; }
	$(BIN)/python benchmarks/run.py

demo: $(STAMP)
	BIN=$(BIN) ./scripts/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mxbridge.db mxbridge.db-* examples/mxbridge.db examples/mxbridge.db-*
