# lastmile: `make e2e` runs the pipeline on the embedded local profile, `make test` runs the tests.
# Both create .venv and install the pinned dependencies (and Debian's docker-registry) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: e2e test unit integration deps lock up down doctor clean

e2e: $(STAMP)
	@bash scripts/e2e.sh

test: $(STAMP)
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

deps: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/bootstrap.sh
	@PYTHON=$(PYTHON) bash scripts/bootstrap.sh
	@touch $@

# Re-pin after changing dependencies in pyproject.toml: what this venv has becomes what CI installs.
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^lastmile' > constraints.txt

up down doctor: $(STAMP)
	$(BIN)/lastmile $@

clean:
	-$(BIN)/lastmile down
	rm -rf $(VENV) .lastmile
