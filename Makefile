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

TORCH_WHEEL := wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
BENTO ?= model-bundle:latest
IMAGE ?= $(BENTO)

.PHONY: help install train train-transformer models serve test test-fast lint format clean \
	wheels build containerize run-container stop-container promote rollback model-status drift replay sync-k8s \
	loadtest bench bench-audio bench-translation function function-image evaluate

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml client/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and alone: the pinned CPU build must be in place before anything asks for torch,
	# otherwise the resolver may choose a CUDA build with several GB of dependencies.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet -e ./client
	touch $@

install: $(VENV)/.installed  ## create .venv and install pinned dependencies

train: install  ## train the CPU models on the real data and save them to the Bento store
	$(PY) -m train.naive_bayes
	$(PY) -m train.tfidf_logreg

train-transformer: install  ## import MiniLM and fine-tune the transformer model (minutes on 2 cores)
	$(PY) -m train.import_minilm --if-missing
	$(PY) -m train.transformer

models: install  ## train only the models serving.yaml needs and the store lacks
	$(PY) -m train.ensure

serve: install  ## install, make the quick models, serve on http://localhost:$(PORT); slow ones join when made
	$(PY) -m train.ensure --serve --port $(PORT)

test: install  ## run the whole test suite (unit, HTTP, integration, slow)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install  ## unit and HTTP tests only
	$(BIN)/pytest -m "not integration and not slow" $(PYTEST_ARGS)

lint: install  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service.py bundle runners tasks train lifecycle serverless
	$(BIN)/mypy --config-file client/pyproject.toml client/bundle_client

format: install  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# ---- shipping -------------------------------------------------------------------------------------

$(TORCH_WHEEL):
	mkdir -p wheels
	$(PY) -m pip download --quiet --no-deps torch==2.13.0 -d wheels
	@test -f $@ || { echo "error: pip did not resolve the CPU build $(notdir $@); put that file in wheels/ (or, for a GPU image, replace it with torch==2.13.0 in bentofile.yaml)"; exit 1; }

wheels: $(TORCH_WHEEL)  ## fetch the CPU torch wheel the image carries

build: models wheels  ## build the Bento (service, runners, models, pinned environment)
	BENTO_BASE_IMAGE="$$(deploy/container/base-image.sh)" $(BIN)/bentoml build
	$(BIN)/bentoml get $(BENTO)

containerize: build  ## build an OCI image of the Bento (docker, else podman/buildah with a local base image)
	PATH="$(CURDIR)/$(BIN):$$PATH" deploy/container/containerize.sh $(BENTO)

run-container:  ## run the image detached on port 3000 and wait until it is ready
	deploy/container/run-container.sh $(IMAGE)

stop-container:  ## stop the running container (SIGTERM) and remove it
	deploy/container/run-container.sh stop

sync-k8s: install  ## copy configuration.yaml and serving.yaml into the Kubernetes ConfigMap
	$(PY) deploy/kubernetes/sync-config.py

LOADTEST_URL ?= http://127.0.0.1:$(PORT)
USERS ?= 32
SPAWN_RATE ?= 8
DURATION ?= 60s

loadtest: install  ## load-test a running service (start `make serve` first): USERS=32 DURATION=60s
	$(PY) -m loadtest.run --host $(LOADTEST_URL) --users $(USERS) --spawn-rate $(SPAWN_RATE) \
		--duration $(DURATION) --out results/loadtest

function: models  ## the serverless function package (zip) of the CPU sentiment models: dist/function.zip
	$(PY) -m serverless.build --out dist/function.zip

function-image: function  ## an OCI image of the function, awslambdaric as entry point (no registry needed)
	PYTHON=$(PY) serverless/build-image.sh dist/function.zip

bench-audio: models  ## audio benchmark: Whisper and basic-pitch in process (batch 1/4/8); /transcribe batching on/off
	$(PY) -m bench.audio --out results/bench

bench-translation: models  ## translation benchmark: torch vs the native engine in process; /translate batching on/off
	$(PY) -m bench.translation --out results/bench

bench: models  ## benchmark: each runtime's in-process limit and accuracy, batching on/off, FastAPI, Ray Serve, LitServe, MLServer (needs wrk)
	$(PY) -m bench.run --out results/bench

# ---- model lifecycle ------------------------------------------------------------------------------

model-status: install  ## which versions serve and which are available
	$(PY) -m lifecycle.promote status

promote: install  ## make VERSION the default of FAMILY: make promote FAMILY=logreg VERSION=abc123
	$(PY) -m lifecycle.promote promote $(FAMILY) $(VERSION)

rollback: install  ## undo the last promotion of FAMILY: make rollback FAMILY=logreg
	$(PY) -m lifecycle.promote rollback $(FAMILY)

replay: install  ## replay a data set through the running service: make replay DOMAIN=tweets
	$(PY) -m lifecycle.replay --domain $(or $(DOMAIN),tweets) --n $(or $(N),500)

evaluate: models  ## every sentiment model on every domain's test split (95% CIs, calibration), beside VADER
	$(PY) -m lifecycle.evaluate

drift: install  ## drift report of recorded traffic against the training data: make drift SINCE=...
	$(PY) -m lifecycle.drift $(if $(SINCE),--since $(SINCE))

clean:  ## remove the virtualenv and caches (not the Bento store)
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .cache
