# Every target installs what it needs into .venv, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: pip would otherwise pick a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m elman.demo

test: lint
	$(PY) -m pytest -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check elman tests bench
	$(VENV)/bin/ruff format --check elman tests bench

format: $(STAMP)
	$(VENV)/bin/ruff check --fix elman tests bench
	$(VENV)/bin/ruff format elman tests bench

bench: $(STAMP)
	$(PY) bench/layers.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
