# One entry point for humans and CI. `make serve` and `make test` are the two commands in the README:
# both create the virtualenv and install pinned dependencies on first use.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PORT ?= 3000
PYTEST_ARGS ?=

export BENTOML_DO_NOT_TRACK := true
export BENTOML_CONFIG ?= $(CURDIR)/configuration.yaml
# Offline by design: no model hub is ever contacted at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help install train models serve test test-fast lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and alone: the pinned CPU build must be in place before anything asks for torch,
	# otherwise the resolver may choose a CUDA build with several GB of dependencies.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed  ## create .venv and install pinned dependencies

train: install  ## train the CPU models on the real data and save them to the Bento store
	$(PY) -m train.naive_bayes
	$(PY) -m train.tfidf_logreg

models: install  ## train only the models serving.yaml needs and the store lacks
	$(PY) -m train.ensure

serve: models  ## install, train what is missing, serve on http://localhost:$(PORT)
	$(BIN)/bentoml serve service:SentimentService --port $(PORT)

test: install  ## run the whole test suite (unit, HTTP, integration, slow)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install  ## unit and HTTP tests only
	$(BIN)/pytest -m "not integration and not slow" $(PYTEST_ARGS)

lint: install  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy settings.py contract.py errors.py service.py runners pipelines train

format: install  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove the virtualenv and caches (not the Bento store)
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .cache
