# `make repro`: set up (first time) and run the pipeline; `make test`: set up and test;
# `make test-fast`: the tests without the slow end-to-end runs, for the edit-test loop;
# `make lint`: ruff's checks and format check, then the import contracts in pyproject.toml
# (lint-imports, without a cache folder: it takes under a second); `make format` rewrites the code.
# Tests run in TEST_WORKERS pytest-xdist processes, one per core (TEST_WORKERS=0: in this process);
# --dist loadgroup runs each xdist_group (the tests sharing a module fixture) on one worker, and
# --no-loadscope-reorder keeps the order tests/conftest.py sets: slow tests first, the longest first.
# The virtual environment is put first on PATH so DVC's stage commands find `houseprices`.
VENV ?= .venv
PYTHON ?= python3
TEST_WORKERS ?= $(shell nproc)
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup setup-test repro test test-fast lint format bench ui exps team-up team-down

# `setup` installs what the pipeline runs on; `setup-test` adds the test extra (pytest, ruff,
# import-linter, PostgreSQL's driver, dvc-s3 and moto for the team services), which `make repro`
# need not wait for.
setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

repro: setup
	dvc repro

test: setup-test
	python -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test-fast: setup-test
	python -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m "not slow"

lint: setup-test
	ruff check .
	ruff format --check .
	lint-imports --no-cache

format: setup-test
	ruff check --fix .
	ruff format .

bench: setup
	python bench/train_speed.py

# Without MLflow's server job runner (8 more processes for GenAI jobs this project never runs).
# MLflow 3.17 opens an experiment on its GenAI overview until "Model training" is picked once in
# the browser; the printed address picks it (docs/team.md).
ui: setup
	@echo "runs: http://127.0.0.1:5000/#/experiments/1?workflowType=machine_learning"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

# `dvc exp show` narrowed to what differs: the changed params and the ensemble CV (README).
exps: setup
	dvc exp show --no-pager --only-changed \
	  --drop '^(?!Experiment|seed|cv\.|features\.|models\.|ensemble\.)' \
	  --keep 'metrics/ensemble.json:cv_log_rmse_mean'

# The team's services on 127.0.0.1 (docs/team.md): PostgreSQL, an MLflow server, a local S3 for
# the DVC remote, kept in .team/ (git-ignored); `. .team/env` sets the variables it prints.
team-up: setup-test
	python team/services.py up --dir .team

team-down: setup-test
	python team/services.py down --dir .team
