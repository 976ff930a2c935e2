# The two commands of the README, each self-sufficient on a fresh clone:
#   make figures   render the figure notebooks into outputs/ (PROFILE=laptop|paper|smoke)
#   make test      the whole test suite (after make lint: ruff check and ruff format --check)
#   make bench     memnb against a naive loop, side by side (writes outputs/bench/latest.json), then the strided
#                  samplers against the full one (outputs/bench/sampler-latest.json)
#                  and the approximate neighbour search against the exact one (approximate-latest.json)
#                  and the generation-free detectors against the exact test (detection-latest.json)
#                  and memnb.Monitor at CIFAR scale against the bare FAISS search (monitor-latest.json)
#   make bench-sweep  a small sweep: serial vs a local Dask cluster (writes outputs/bench/sweep-latest.json)
#   make bench-store  one Monitor.observe at epoch 10 vs epoch 400 of one run (writes outputs/bench/store-latest.json)
# Both create .venv (idempotent: re-installs only when pyproject.toml changes).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.memnb-installed
# The CPU wheel of torch 2.13.0 lies on disk here; an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PROFILE ?= laptop
PYTEST_ARGS ?=

.PHONY: figures test lint bench bench-sweep bench-store venv chromium clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

chromium:
	@bash scripts/install-chromium.sh

figures: venv chromium
	$(PY) -m memnb.workflows.render --profile $(PROFILE)

lint: venv
	$(VENV)/bin/ruff check memnb tests benchmarks scripts
	$(VENV)/bin/ruff format --check memnb tests benchmarks scripts

test: venv chromium lint
	$(VENV)/bin/nbstripout --verify notebooks/*.ipynb
	$(PY) -m memnb.workflows.render --prepare-only build/nbval --profile smoke
	$(PY) -m pytest -n 2 --dist loadfile --nbval-lax tests build/nbval $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

bench: venv
	$(PY) benchmarks/bench.py $(BENCH_ARGS)
	$(PY) benchmarks/calibration_bench.py
	$(PY) benchmarks/ordering_bench.py
	$(PY) benchmarks/approximate_bench.py $(filter --quick,$(BENCH_ARGS))
	$(PY) benchmarks/sampler_bench.py $(BENCH_ARGS)
	$(PY) benchmarks/detection_bench.py $(filter --quick,$(BENCH_ARGS))
	$(PY) benchmarks/monitor_bench.py $(filter --quick,$(BENCH_ARGS))

bench-sweep: venv
	$(PY) benchmarks/sweep_bench.py $(BENCH_ARGS)

bench-store: venv
	$(PY) benchmarks/store_bench.py $(BENCH_ARGS)
