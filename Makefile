# Every target sets up .venv from the lock file first, so a fresh clone needs nothing but Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock

.PHONY: pipeline test test-fast lint lock setup repro deploy prefect-server mlflow-server

pipeline: $(STAMP)  ## the main job: data -> classifier -> every variant -> evaluation -> registry (cpu profile)
	$(BIN)/mnistgen pipeline

test: $(STAMP)  ## every test, the slow end-to-end ones included (what CI runs)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## the quick inner loop
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src flows tests benchmarks

setup: $(STAMP)

repro: $(STAMP)  ## rebuild with DVC (`profile:` in params.yaml picks the profile); stages call `mnistgen`
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

prefect-server: $(STAMP)  ## a Prefect server and UI on http://127.0.0.1:4200
	$(BIN)/prefect server start --host 127.0.0.1 --analytics-off

deploy: $(STAMP)  ## work pools `gpu` (one run at a time) and `cpu`, then every deployment in prefect.yaml
	$(BIN)/prefect work-pool create gpu --type process --overwrite
	$(BIN)/prefect work-pool set-concurrency-limit gpu 1
	$(BIN)/prefect work-pool create cpu --type process --overwrite
	$(BIN)/prefect --no-prompt deploy --all

mlflow-server: $(STAMP)  ## a shared MLflow tracking server (see mlflow/README.md)
	mlflow/server.sh

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
