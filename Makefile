# The two set-up commands of the README: `make run` (the demo) and `make test` (the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DURATION ?= 60

.PHONY: run test bench train clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

# The tests train a tiny model too: torch pinned, so pip takes the CPU build (an unpinned torch
# resolves to a multi-GB CUDA build).
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,train]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/edge run --config configs/demo.yaml --duration $(DURATION)

test: $(VENV)/.installed-dev
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_buffers.py --out benchmarks/results/buffers.json
	$(BIN)/python benchmarks/bench_engine.py --model engines/driver-av.onnx --out benchmarks/results/engine-driver.json
	$(BIN)/python benchmarks/bench_engine.py --model engines/home-av.onnx --out benchmarks/results/engine-home.json

# Retrain the reference models (CPU; torch from the train extra).
train: $(VENV)/.installed-dev
	$(BIN)/edge train --task driver
	$(BIN)/edge train --task home

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache
