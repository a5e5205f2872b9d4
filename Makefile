# Every target sets up the virtual environment from the lock files first, so a fresh clone needs nothing
# but Python 3.11, 3.12 or 3.13: the newest of python3.13, python3.12 and python3.11 that runs here, or
# PYTHON=/path/to/python. VENV= names the environment (CI keeps one per Python version).
SUPPORTED_PYTHONS := 3.13 3.12 3.11
PYTHON ?= $(firstword $(foreach v,$(SUPPORTED_PYTHONS),$(shell python$(v) -c '' >/dev/null 2>&1 && echo python$(v))))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock
DOCS_ASSETS := datadocs/node_modules/.installed-from-lock

.PHONY: pipeline test test-fast lint lock setup repro deploy prefect-server mlflow-server mlflow-ui docs docs-serve team-up team-down

pipeline: $(STAMP) $(DOCS_ASSETS)  ## the main job: data -> classifier -> every variant -> evaluation -> registry (cpu profile)
	$(BIN)/mnistgen pipeline

# One test worker per core plus one (at most 4): much of a test's time is a child process importing
# TensorFlow on one core, and much of the rest waiting on a server, a worker's poll or a child's start-up,
# which the extra worker fills (README "Development" has the measured times). A test file stays on one
# worker, so its module-scoped fixtures are built once
# (`loadfile`: xdist's `loadgroup` does not group under pytest 9.2, pytest-xdist#1386). TEST_WORKERS=0: none.
TEST_WORKERS ?= $(shell cores=$$(nproc 2>/dev/null || echo 1); echo $$(( cores < 4 ? cores + 1 : 4 )))
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP) $(DOCS_ASSETS)  ## every test, the slow end-to-end ones included (what CI runs)
	$(PYTEST)

test-fast: $(STAMP)  ## the quick inner loop
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src flows tests benchmarks team docs

# The documentation site (MkDocs Material, mkdocs.yml): built offline, and strictly (a broken link or a page
# missing from the navigation fails); its reference pages and results are generated (docs/hooks.py).
docs: $(STAMP)  ## the documentation site in site/ (open site/index.html)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "site/index.html"

docs-serve: $(STAMP)  ## the documentation site on http://127.0.0.1:8000, rebuilt as pages change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8000

setup: $(STAMP) $(DOCS_ASSETS)

repro: $(STAMP) $(DOCS_ASSETS)  ## rebuild with DVC (`profile:` in params.yaml picks the profile); stages call `mnistgen`
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

mlflow-ui: $(STAMP)  ## the MLflow UI on the project's own store: http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --host 127.0.0.1 --port 5000

# PostgreSQL, an S3 store (moto), MLflow on both and Prefect on PostgreSQL, on 127.0.0.1; writes .team.env
# (README "Team scale"): `set -a; . ./.team.env; set +a` points mnistgen, prefect, mlflow and dvc at them.
team-up: $(STAMP)
	$(BIN)/python team/stack.py up

team-down: $(STAMP)
	$(BIN)/python team/stack.py down

# uv (pinned with its hashes in tools.lock) installs the lock: every package hash-checked, in about a
# minute from a cold cache (README "Development" has the measured times).
$(STAMP): requirements.lock tools.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: no Python 3.13, 3.12 or 3.11 runs here (python3.13, python3.12, python3.11 on the PATH). Fix: install one, or pass PYTHON=/path/to/python3.X"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(None if (3, 11) <= sys.version_info[:2] <= (3, 13) else f"error: mnistgen runs on Python 3.11, 3.12 or 3.13; {sys.executable} is {sys.version.split()[0]}. Fix: pass PYTHON=/path/to/python3.13 (or 3.12, 3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r tools.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes --no-deps --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# The scripts, styles and fonts of the Data Docs, pinned in datadocs/package-lock.json, so the pages work
# offline (src/mnistgen/data/docs_assets.py); without npm they load them from CDNs.
$(DOCS_ASSETS): datadocs/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix datadocs --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "note: no npm here: the Data Docs will load their scripts and styles from CDNs (apt-get install npm)"; fi

# One lock for every supported Python and platform (universal resolution; the same version of a package on
# every Python where one version serves them all); the versions already locked are kept where they fit.
lock: $(STAMP)  ## re-resolve requirements.lock (and tools.lock) after changing pyproject.toml (or tools.in)
	$(BIN)/uv pip compile pyproject.toml --extra cpu --extra dev --extra team --universal \
		--fork-strategy fewest --generate-hashes --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile tools.in --universal --generate-hashes --python-version 3.11 -o tools.lock
