# lastmile: `make e2e` runs the pipeline on the embedded local profile, `make test` runs the tests.
# Both create .venv and install the pinned dependencies (and Debian's docker-registry) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TIERS  := tests/unit tests/component tests/integration tests/e2e

.PHONY: e2e test unit component integration lint drills deps lock up down doctor clean

e2e: $(STAMP)
	@bash scripts/e2e.sh

# Every tier once, cheapest first: unit (pure), component (processes, git, SQLite), integration (stand-ins), e2e;
# JUnit XML in reports/tests.xml (scripts/tier_times.py sums it per tier).
test: $(STAMP)
	@bash scripts/test-tools.sh
	$(BIN)/pytest $(TIERS) --junitxml=reports/tests.xml

unit component integration: $(STAMP)
	$(BIN)/pytest tests/$@

# ruff, the import rules (import-linter contracts in pyproject.toml) and mypy.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Every drill in scenarios/drills on stand-ins of its own (state in .lastmile-drills/); JUnit in reports/drills.xml.
# PROFILE=oci-local or PROFILE=containers runs them on that profile (scripts/drills.sh).
drills: $(STAMP)
	@bash scripts/drills.sh

deps: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/bootstrap.sh scripts/warm_bytecode.py
	@PYTHON=$(PYTHON) bash scripts/bootstrap.sh
	@touch $@

# Re-pin after changing dependencies in pyproject.toml: what this venv has becomes what CI installs.
# pip is in .venv whichever installer filled it, and its freeze installs with both uv and pip.
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^lastmile' > constraints.txt

up down doctor: $(STAMP)
	$(BIN)/lastmile $@

clean:
	-$(BIN)/lastmile down
	-LASTMILE_STATE_DIR=.lastmile-drills $(BIN)/lastmile down
	rm -rf $(VENV) .lastmile .lastmile-drills reports
