# The two commands of the README, and what they need. Everything installs into ./.venv and
# ./node_modules, so a fresh clone needs only python3 (3.11+), node + npm and make.
VENV ?= .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: install environments demo destroy test lint synth

# Byte-compile the library once: with PYTHONDONTWRITEBYTECODE set (as in some CI and dev shells)
# Python never writes .pyc, and every synth would compile the library again (~30 ms of CPU).
# Existing .pyc are still read; stale ones are recompiled here (and ignored at import until then).
install: $(VENV)/.installed node_modules/.installed
	$(PY) -m compileall -q cdk_sagemaker_rl

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Local mode's environment for the RLlib example (ray[rllib] 2.60 pins gymnasium 1.2.2, the
## Stable-Baselines3 example 1.4.0): built once per requirements hash, reused afterwards. The tests
## take it from the cache, so that building it is not part of the timed test run.
environments: install
	$(PY) -m cdk_sagemaker_rl.local.environments examples/rllib_cartpole/requirements.txt

## README command 1: deploy the reference stack to the local emulator, train, serve, play CartPole.
demo: install
	$(PY) -m cdk_sagemaker_rl.local demo

## Tear the local deployment down and stop every process the demo started.
destroy: install
	$(PY) -m cdk_sagemaker_rl.local destroy

## README command 2: the whole test suite, on three workers (pytest-xdist) for two cores: the
## local-mode tests mostly wait on subprocesses (cdk, training, model servers) while the synth
## tests keep the cores busy (measured: 211 s; 260 s with another process holding a core).
## Each test file stays on one worker (--dist loadfile), so module fixtures synthesize once, and
## files start in collection order (--no-loadscope-reorder): the longest first (tests/conftest.py).
test: install environments
	$(PY) -m pytest -n 3 --dist loadfile --no-loadscope-reorder

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

synth: install
	npx cdk synth --quiet
