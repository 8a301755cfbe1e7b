# The two README commands:  `make demo`  (main job)  and  `make test`  (test suite).
# Each creates .venv if it is missing and installs exactly the pinned set first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/lock-cpu.txt
STAMP := $(VENV)/.installed
# DDS isolation for anything that starts nodes from make (tests isolate themselves too).
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: env demo test lint sim-bench preview train-default clean

env: $(STAMP)

$(STAMP): $(LOCK) setup.py setup.cfg package.xml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

demo: $(STAMP)
	$(BIN)/fluoro-perception demo --output out/demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src test launch
	$(BIN)/ruff format --check src test launch

sim-bench: $(STAMP)
	$(BIN)/fluoro-sim bench

preview: $(STAMP)
	$(BIN)/fluoro-sim preview docs/img/sim_preview.png

train-default: $(STAMP)
	$(BIN)/fluoro-train train --config config/train/default.yaml

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info out .pytest_cache .ruff_cache
