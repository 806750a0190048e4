# The README's two commands: `make run` (the full stack on the simulated world) and
# `make test` (lint, type check and the whole test suite). Both create or reuse .venv,
# install the pinned ROS 2 client wheels, PyTorch and this package, and build msg/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config/sim.yaml
RUN_SECONDS ?= 0
RECORD ?= 0
PYTEST_ARGS ?=

# DDS discovery stays on this machine unless the caller (or a config's pamiq_launcher section)
# says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export PYTHONUNBUFFERED := 1

MSG_SOURCES := $(wildcard msg/msg/*.msg msg/srv/*.srv msg/tf2_msgs/msg/*.msg) msg/CMakeLists.txt \
  msg/package.xml msg/tf2_msgs/CMakeLists.txt msg/wheel_python_targets.cmake

.PHONY: setup run test lint typecheck bench bench-sync bench-network bench-curiosity bench-continual \
	bench-recording clean

setup: $(VENV)/.installed-package

$(VENV)/.installed-requirements: requirements.txt
	@echo "[setup] virtual environment $(VENV) with pinned ROS 2 wheels, PyTorch and tools"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --quiet -r requirements.txt  # -qq: errors only
	touch $@

$(VENV)/.installed-interfaces: $(VENV)/.installed-requirements $(MSG_SOURCES)
	@echo "[setup] building msg/ (pamiq_ros_interfaces) into $(VENV)"
	mkdir -p build; venv=$$(cd $(VENV) && pwd); \
	cmake -S msg -B build/msg -DCMAKE_PREFIX_PATH=$$venv -DCMAKE_INSTALL_PREFIX=$$venv \
	  -DPython3_EXECUTABLE=$$venv/bin/python -DBUILD_TESTING=OFF > build/msg-cmake.log 2>&1 \
	  || { cat build/msg-cmake.log; exit 1; }; \
	cmake --build build/msg -j2 > build/msg-build.log 2>&1 || { cat build/msg-build.log; exit 1; }; \
	cmake --install build/msg > build/msg-install.log 2>&1 || { cat build/msg-install.log; exit 1; }
	@# tf2_msgs/TFMessage (for /tf) has no wheel on the registry: build it unless a ROS has it.
	$(PY) -c "import tf2_msgs.msg" 2>/dev/null || { venv=$$(cd $(VENV) && pwd); \
	  cmake -S msg/tf2_msgs -B build/tf2_msgs -DCMAKE_PREFIX_PATH=$$venv \
	  -DCMAKE_INSTALL_PREFIX=$$venv -DPython3_EXECUTABLE=$$venv/bin/python -DBUILD_TESTING=OFF \
	  > build/tf2-cmake.log 2>&1 && cmake --build build/tf2_msgs -j2 > build/tf2-build.log 2>&1 \
	  && cmake --install build/tf2_msgs > build/tf2-install.log 2>&1 \
	  || { cat build/tf2-*.log; exit 1; }; }
	@# Outside tools the tests use (liblo's oscdump, ffmpeg; iproute2 and nftables for the
	@# multi-host test): installed when root, else those tests skip.
	command -v oscdump > /dev/null && command -v ffmpeg > /dev/null && command -v ip > /dev/null \
	  && command -v nft > /dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null \
	  && { apt-get install -y -qq liblo-tools ffmpeg iproute2 nftables > /dev/null \
	  || { apt-get update -qq && apt-get install -y -qq liblo-tools ffmpeg iproute2 nftables \
	  > /dev/null; }; } || echo "[setup] liblo-tools/ffmpeg/iproute2/nftables not installed: \
	  the tests that use them will skip"; }
	touch $@

$(VENV)/.installed-package: $(VENV)/.installed-interfaces setup.py setup.cfg package.xml
	@echo "[setup] installing pamiq_ros (editable) into $(VENV)"
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: setup
	$(VENV)/bin/pamiq-ros launch $(CONFIG) --duration $(RUN_SECONDS) $(if $(filter 1,$(RECORD)),--record)

BENCH_ARGS ?=
# The suite (about 40 min): step timing, real-time options, baselines, renderer, latency, memory,
# the small-preset comparison (scale) and weight sync at 10 M/50 M parameters (sync).
bench: setup
	$(PY) -m pamiq_ros.bench.suite $(BENCH_ARGS)
	$(PY) -m pamiq_ros.bench.network  # weights and experience across namespaced hosts (root)

# Weight sync at 1 M/10 M/50 M parameters over shm and bytes, with the stage breakdown.
bench-sync: setup
	$(PY) -m pamiq_ros.bench.weight_sync

# Weights and experience between namespaced hosts at 0/2/10 % loss and with 2 agents (root;
# about 4 min; skipped with the reason otherwise).
bench-network: setup
	$(PY) -m pamiq_ros.bench.network $(BENCH_ARGS)

bench-curiosity: setup
	$(PY) -m pamiq_ros.bench.curiosity $(BENCH_ARGS)

# Plasticity and forgetting of the JEPA encoder (about 25 min on 2 cores; BENCH_ARGS=--quick).
bench-continual: setup
	$(PY) -m pamiq_ros.bench.continual $(BENCH_ARGS)

# Agent step timing without and with the recorder, and bag sizes (about 6 min).
bench-recording: setup
	$(PY) -m pamiq_ros.bench.recording $(BENCH_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) *.egg-info
