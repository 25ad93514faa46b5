"""Character-level language modeling (char-rnn): train on any UTF-8 text, generate from a prompt.

Model: embedding -> stacked RNN/LSTM/GRU -> linear softmax over the characters. Training uses
truncated BPTT over contiguous batches (``elman.data.stream``): the hidden state flows from one
chunk of ``seq_len`` characters to the next. Validation holds out the last ``valid_fraction``
of the text and reports nats and bits per character with the state carried through it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import Tensor

from elman.data.text import bundled_corpus_path, read_text, split_by_position
from elman.data.vocab import CharVocab
from elman.decode import Sampling, next_token
from elman.fields import option
from elman.nn import CELLS
from elman.nn.checks import check_fields, check_positive_int
from elman.tasks.awd import Regularizers
from elman.tasks.lm.finetune import check_same, copy_all, source_run
from elman.tasks.lm.model import RecurrentLM, StreamLMTask, arguments, evaluate_ids, starts_tensor
from elman.tasks.rundir import resume_run
from elman.train import TrainConfig, Trainer, seed_everything
from elman.train.checkpoint import CheckpointError, read_meta

NAME = "charlm"
TextPaths = str | Path | Sequence[str | Path] | None
__all__ = [
    "CharLM",
    "CharLMConfig",
    "CharLMTask",
    "evaluate_ids",
    "generate",
    "model_from",
    "resume",
    "train",
]


# The defaults (with ``CHARLM.train_defaults`` in ``elman.tasks.lm.run``) are what
# `elman train charlm` and the Python API train, chosen with bench/charlm.py (see its results).
# 3-minute probes (LSTM, lr 3e-3, B=32): 2x256 1.824 nats/char, 1x512 1.837, 2x384 1.939.
# 10 minutes, dropout 0.2: GRU 1.665, LSTM 1.713 (without dropout LSTM 1.750: it overfits).
# B=16 takes twice the updates of B=32 at the same tokens/s (LSTM 1.715); the LSTM still
# overfits, and decoupled weight decay 0.1 with dropout 0.3 brings it to 1.687 (replay of the
# 5,637 steps 10 CPU-minutes buy; Adam with dropout 0.3 alone: 1.706).
@dataclass(frozen=True, kw_only=True)
class CharLMConfig(Regularizers):
    """The model and how text is fed to it. Every field with help is also an option of
    `elman train charlm` (``elman.fields``); the defaults are the recommended model."""

    cell: str = option("lstm", f"recurrent cell: {', '.join(CELLS)}", choices=CELLS)
    embedding: int = option(64, "character embedding size")
    hidden: int = option(256, "hidden units per layer")
    layers: int = option(2, "stacked recurrent layers")
    dropout: float = option(0.3, "dropout between layers and before the output layer, in [0, 1)")
    embed_dropout: float = option(0.0, "dropout on the character embeddings, in [0, 1)")
    reverse: bool = option(
        False,
        "read the text backwards (a backward model, for contextual string embeddings and "
        "bidirectional fine-tuning)",
    )
    batch_size: int = option(
        16, "parallel rows of text per batch (split across processes under torchrun)"
    )
    seq_len: int = option(
        128, "characters per chunk: how far back gradients flow (the state flows on)"
    )
    valid_fraction: float = option(0.1, "held-out tail of the text used for validation")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(
            self,
            {"cell": CELLS},
            ("embedding", "hidden", "layers", "batch_size", "seq_len"),
            rates=("dropout", "embed_dropout"),
            flags=("reverse",),
        )
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction!r}")


class CharLM(RecurrentLM):
    """Embedding -> recurrent layers -> logits over ``vocab_size`` characters."""

    def __init__(self, vocab_size: int, config: CharLMConfig) -> None:
        super().__init__(vocab_size, *arguments(config))
        self.config = config


class CharLMTask(StreamLMTask):
    """The trainer's view of character language modeling (see ``elman.train.Task``)."""

    name = NAME

    def __init__(
        self,
        text: str,
        config: CharLMConfig,
        seed: int = 0,
        vocab: CharVocab | None = None,
        source: dict | None = None,
        doc_starts: Sequence[int] = (),
    ) -> None:
        self.config, self.source = config, source or {}
        self.init_from: dict | None = None  # the run it started from, if any
        train_text, valid_text = split_by_position(text, config.valid_fraction)
        self.vocab = vocab or CharVocab.from_text(text)
        cut = len(train_text)
        train_starts = starts_tensor(doc_starts, 0, cut)
        valid_starts = starts_tensor(doc_starts, cut)
        if config.reverse:  # the same held-out text, read from its end
            train_text, valid_text = train_text[::-1], valid_text[::-1]
            train_starts = reversed_starts(train_starts, len(train_text))
            valid_starts = reversed_starts(valid_starts, len(valid_text))
        super().__init__(
            CharLM(len(self.vocab), config),
            self.vocab.encode(train_text),
            self.vocab.encode(valid_text),
            config.batch_size,
            config.seq_len,
            seed,
            train_starts,
            valid_starts,
        )

    def metrics(self, nats: float, split: str) -> dict[str, float]:
        return {f"{split}_bits_per_char": nats / math.log(2)}

    def describe(self) -> dict:
        return {
            "model": asdict(self.config),
            "vocab": self.vocab.to_json(),
            "source": self.source,
            "seed": self.seed,
            "init_from": self.init_from,
        }


def reversed_starts(starts: Tensor, length: int) -> Tensor:
    """Where documents start in the reversed text: a boundary at s is at ``length`` - s."""
    flipped = (length - starts).flip(0)
    return flipped[(flipped > 0) & (flipped < length)]


def text_source(paths: TextPaths = None) -> tuple[str, list[int], dict]:
    """Text, document starts and provenance of ``paths`` (the bundled corpus when None/empty).

    Several files are concatenated as separate documents: the state resets between them.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    bundled = not paths
    files = [bundled_corpus_path()] if bundled else [Path(p) for p in paths]
    texts = [read_text(p) for p in files]
    starts = [sum(len(t) for t in texts[:i]) for i in range(1, len(texts))]
    text = "".join(texts)
    source = {
        "bundled": bundled,
        "paths": [] if bundled else [str(p.resolve()) for p in files],
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "chars": len(text),
        "doc_starts": starts,
    }
    return text, starts, source


def train(
    text_path: TextPaths,
    config: CharLMConfig,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    init_from: str | Path | None = None,
) -> dict[str, float]:
    """Train a character model on text file(s) (the bundled corpus when None) into ``out``;
    ``init_from``: a character LM run to start from (its vocabulary and weights; ``config``
    must give its model, ``elman.tasks.lm.finetune.SHAPE``)."""
    seed_everything(train_config.seed)
    text, starts, source = text_source(text_path)
    run, vocab = None, None
    if init_from is not None:
        run = source_run(init_from, NAME)
        check_same(config, run)
        unseen = sorted(set(text) - set(run.vocab.chars))
        if unseen:
            raise ValueError(
                f"--init-from: the text has {len(unseen)} character(s) the LM never saw, e.g. "
                f"{''.join(unseen[:20])!r}; start from an LM pretrained on text that has them"
            )
        vocab = run.vocab
    task = CharLMTask(text, config, train_config.seed, vocab, source=source, doc_starts=starts)
    if run is not None:
        task.init_from = copy_all(task.model, run)
    return Trainer(task, train_config, out).fit(until)


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


def _task_from_meta(meta: dict) -> CharLMTask:
    """Rebuild a run's task from its checkpoint header; its text must be unchanged."""
    info = meta["task_config"]
    source = info["source"]
    text, starts, now = text_source(source["paths"])
    if now["sha256"] != source["sha256"]:
        raise CheckpointError(
            f"the training text ({', '.join(source['paths']) or 'bundled'}) "
            "changed since this run started; the run needs the same text"
        )
    vocab = CharVocab.from_json(info["vocab"])
    task = CharLMTask(text, CharLMConfig(**info["model"]), info["seed"], vocab, source, starts)
    task.init_from = info.get("init_from")
    return task


def validation_ids(out: str | Path) -> Tensor:
    """The held-out characters of the run in ``out``, re-read from its training text."""
    return _task_from_meta(read_meta(Path(out) / "last.safetensors", NAME)).valid_ids


def model_from(info: dict) -> tuple[CharLM, CharVocab]:
    """The (untrained) model and vocabulary a checkpoint header's ``task_config`` describes."""
    vocab = CharVocab.from_json(info["vocab"])
    known = {f.name for f in fields(CharLMConfig)}
    config = CharLMConfig(**{k: v for k, v in info["model"].items() if k in known})
    return CharLM(len(vocab), config), vocab


def generate(
    model: CharLM,
    vocab: CharVocab,
    prompt: str,
    length: int,
    sampling: Sampling | None = None,
    unknown: str = "error",
) -> Iterator[str]:
    """Characters following ``prompt``, one at a time (prime with the prompt, then sample)."""
    check_positive_int("length", length)
    ids = vocab.encode(prompt, unknown)
    if ids.numel() == 0:
        raise ValueError(
            f"prompt: expected at least one character the vocabulary knows, got {prompt!r}"
        )
    sampling = sampling or Sampling()
    generator = sampling.generator()
    model.eval()
    with torch.no_grad():
        logits, state = model(ids[None, :])
        for _ in range(length):
            token = next_token(logits[:, -1], sampling, generator)
            yield vocab.chars[int(token)]
            logits, state = model(token[:, None], state)
