# Every target sets up .venv from the lock file first, so a fresh clone needs nothing but Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock

.PHONY: pipeline test test-fast lint lock setup

pipeline: $(STAMP)  ## the main job (for now the data stage)
	$(BIN)/mnistgen data

test: $(STAMP)  ## every test, the slow end-to-end ones included (what CI runs)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## the quick inner loop
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src flows tests

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"mnistgen needs Python 3.11, {sys.executable} is {sys.version.split()[0]}: pass PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

lock:  ## re-resolve requirements.lock after changing dependencies in pyproject.toml
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra cpu --extra dev --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock
