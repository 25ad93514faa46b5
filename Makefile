# Every target installs what it needs into .venv, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CORE := $(VENV)/.core-installed
DEV := $(VENV)/.dev-installed
BENCHDEPS := $(VENV)/.bench-installed
RUN ?= runs/shakespeare

.PHONY: demo test lint format bench clean

$(CORE): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: pip would otherwise pick a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[plot]'
	# Compile the fused recurrent kernels now (cached by torch); without a compiler this
	# prints why, and the layers use the other paths.
	$(PY) -m elman.kernels.fused
	touch $(CORE)

$(DEV): $(CORE)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(DEV)

$(BENCHDEPS): $(DEV)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCHDEPS)

# The main job: a character model on the bundled Shakespeare, then a sample from it.
demo: $(CORE)
	$(VENV)/bin/elman train charlm --out $(RUN) --overwrite --steps 2500 --time-limit 300 --anneal-by-time --eval-every 500
	$(VENV)/bin/elman generate $(RUN) --prompt "ROMEO:" --length 400 --temperature 0.8 --seed 1

test: lint
	$(PY) -m pytest -n 2

lint: $(DEV)
	$(VENV)/bin/ruff check elman tests bench
	$(VENV)/bin/ruff format --check elman tests bench

format: $(DEV)
	$(VENV)/bin/ruff check --fix elman tests bench
	$(VENV)/bin/ruff format elman tests bench

# Each benchmark writes bench/results/NAME.{json,md}; they take minutes to hours.
bench: $(BENCHDEPS)
	$(PY) bench/layers.py
	$(PY) bench/charlm.py
	$(PY) bench/text_tasks.py
	$(PY) bench/ucr.py
	$(PY) bench/g2p.py --train none && $(PY) bench/g2p.py --train additive
	$(PY) bench/g2p.py --train general && $(PY) bench/g2p.py --report
	$(PY) bench/forecast.py
	$(PY) bench/anomaly.py
	$(PY) bench/long_range.py
	$(PY) bench/music.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
