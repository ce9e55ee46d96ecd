# Two commands for a new user: `make run` and `make test`. Both set up .venv on first use, from the
# lock files (exact versions with hashes): a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# make run installs the runtime only; make test / lint / the benchmark install the dev lock.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run up test lint format lock clean messages samples

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The project's own modules are compiled once here, as pip compiles every package it installs: the
# editable install does not, and with PYTHONDONTWRITEBYTECODE set each service would compile
# them again at every start (≈ 0.5 s of start-up with four services on two cores, bench/README.md).
COMPILE := $(BIN)/python -m compileall -q shared services infra > /dev/null

$(RUN_STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(COMPILE)
	touch $@

$(DEV_STAMP): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(COMPILE)
	touch $@ $(RUN_STAMP)

## Start nats-server + the four services and walk one demo family through the whole flow.
run: $(RUN_STAMP)
	$(BIN)/python -m infra.run --demo

## Start nats-server + the four services without the demo.
up: $(RUN_STAMP)
	$(BIN)/python -m infra.run

## Run the test suite (real nats-server from the wheel, SQLite, PostgreSQL when reachable).
test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff (lint and format check) on the whole tree; mypy (strict on shared/ and the plain domain modules, pyproject.toml).
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Apply ruff's fixes and formatting.
format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Refresh both lock files from pyproject.toml (commit them together with pyproject.toml).
lock: $(DEV_STAMP)
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet \
		-o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet \
		--extra test --extra bench --extra lint --extra lock -o requirements-dev.lock

## Translations: extract the source texts (marked N_) and merge them into each catalogue's fi/sv/en
## .po files (shared/catalogue.py lists the catalogues; docs/translations.md).
define catalogue
	mkdir -p $(1)
	$(BIN)/pybabel extract -F babel.cfg --no-default-keywords -k N_ --add-location=file --sort-by-file --omit-header \
		-o $(1)/$(2).pot $(3)
	for lang in fi sv en; do \
		$(BIN)/pybabel update -i $(1)/$(2).pot -d $(1) -D $(2) -l $$lang --no-wrap --ignore-obsolete --init-missing || exit 1; \
	done
endef
messages: $(DEV_STAMP)
	$(call catalogue,services/notifications/locale,messages,services/notifications/templates.py services/notifications/plan_copy.py)
	$(call catalogue,services/plans/locale,plans,services/plans/printable.py services/plans/charts.py)
	$(call catalogue,services/referral/locale,referral,services/referral/statistics.py)
	$(call catalogue,services/meetings/locale,meetings,services/meetings/joint_statistics.py)
	$(call catalogue,shared/locale,errors,shared/errors.py services/meetings/domain.py services/plans/domain.py services/referral/handlers.py)
	$(BIN)/python -m shared.glossary write

## Pictures of the invitation e-mail and the printable plan in fi/sv/en (docs/samples/*.png), by
## headless Chromium (apt-get install -y chromium; docs/translations.md).
samples: $(DEV_STAMP)
	$(BIN)/python -m infra.samples

clean:
	rm -rf $(VENV) var
