"""The language-model tasks behind the one ``Run`` interface: ``CHARLM`` and ``WORDLM`` (their
``TaskSpec``s) and the runs they load. Both generate text, evaluate on held-out text, stream
and export; a word model also predicts the next words and lists a sentence's likeliest endings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from elman.data.text import read_text
from elman.data.tokenize import EOS_ID, PAD_ID, UNK_ID
from elman.decode import Sampling
from elman.graphs.graph import Export
from elman.tasks.awd import awd_preset
from elman.tasks.lm import charlm, wordlm
from elman.tasks.lm.graphs import language_graphs, model_inputs
from elman.tasks.lm.spaces import CHARLM_SPACE, WORDLM_SPACE
from elman.tasks.lm.stream import Stream
from elman.tasks.rundir import open_model
from elman.tasks.spec import Run, TaskSpec
from elman.tasks.transfer import Pretrained, weights_digest

WORDLM_EXAMPLE = "the man said that it was"  # the real input a word model's graph is checked on


class LanguageRun(Run):
    """A trained language model: it generates ``unit`` (``default_length`` of them unless
    told), streams text and exports "sequence" or "step" graphs."""

    unit: ClassVar[str]  # what a generation length counts
    pieces: ClassVar[str]  # what the model reads a text as
    default_length: ClassVar[int]
    default_prompt: ClassVar[str]  # what generation is primed with when no prompt is given
    hidden_ids: ClassVar[tuple[int, ...]] = ()  # tokens never proposed as the next one

    def names(self) -> list[str]:
        """The output tokens, by id."""
        raise NotImplementedError

    def details(self) -> dict:
        return {"vocabulary": len(self.names())}

    def generate(
        self, prompt: str, length: int, sampling: Sampling | None = None, **options: Any
    ) -> Iterator[str]:
        """The pieces of text that follow ``prompt``, one token at a time."""
        raise NotImplementedError

    def explain_pieces(self, text: str) -> tuple[Tensor, list[str]]:
        """The ids (T,) the model reads for ``text`` and the piece of text each stands for."""
        raise NotImplementedError

    def token_name(self, i: int) -> str:
        """How token ``i`` reads as text."""
        return self.names()[i]

    @property
    def backward(self) -> bool:
        """Whether the model reads text from its end (trained with ``reverse``)."""
        return bool(getattr(self.config, "reverse", False))

    def forwards_only(self, what: str) -> None:
        """Refuse ``what`` for a backward model, which cannot continue text."""
        if self.backward:
            raise ValueError(
                f"{what} reads text forwards, but this is a backward model (trained with "
                "--reverse): it scores text (`elman evaluate`), exports, and initialises "
                "other models (--init-from)"
            )

    def pretrained(self) -> Pretrained:
        m = self.model
        weights = {"embed": m.embed.weight, **m.rnn.state_dict()}
        tokenizer = getattr(self, "tokenizer", None)
        return Pretrained(
            tokens=tuple(self.names()),
            tokenizer=tokenizer,
            embedding=m.embed.weight.detach().clone(),
            rnn=m.rnn,
            cell=self.config.cell,
            backward=self.backward,
            source={
                "path": str(self.path.resolve()),
                "task": self.task,
                "checkpoint": self.which,
                "step": self.meta.get("step"),
                "backward": self.backward,
                "sha256": weights_digest(weights),
            },
        )

    def open_stream(self, **options: Any) -> Stream:
        self.forwards_only("a stream")
        if options:
            raise ValueError(f"options: a language stream takes none, got {sorted(options)}")
        return Stream(self.model)

    def restore_stream(self, data: bytes) -> Stream:
        self.forwards_only("a stream")
        return Stream.from_bytes(self.model, data)

    def example(self) -> Tensor:
        """Real input ids (1, T) the exported graph is checked on."""
        raise NotImplementedError

    def graphs(self, mode: str | None = None) -> Export:
        mode = mode or "sequence"
        found = language_graphs(self.model, len(self.names()), False, mode)
        x = self.example()
        x = x[:, :1] if mode == "step" else x
        return Export(found, {found[0].name: model_inputs(self.model, x)}, mode=mode)

    def instead(self, verb: str) -> str:
        return "`elman generate DIR --prompt TEXT` continues a text"


class CharRun(LanguageRun):
    """A character model: ``vocab`` (a ``CharVocab``) beside the common fields."""

    unit, pieces, default_length, default_prompt = "characters", "characters", 500, "\n"

    def __init__(self, path, which, model, meta, config, vocab) -> None:
        super().__init__(path, which, model, meta, config)
        self.vocab = vocab

    @classmethod
    def open(cls, path: str | Path, which: str = "best") -> CharRun:
        model, vocab, meta = open_model(path, charlm.NAME, which, charlm.model_from)
        return cls(path, which, model, meta, model.config, vocab)

    def names(self) -> list[str]:
        return list(self.vocab.chars)

    def generate(
        self, prompt: str, length: int, sampling: Sampling | None = None, unknown: str = "error"
    ) -> Iterator[str]:
        """Characters after ``prompt``; ``unknown``: "error" for prompt characters the model
        never saw, or "skip" them."""
        self.forwards_only("generation")
        return charlm.generate(self.model, self.vocab, prompt, length, sampling, unknown)

    def evaluate(self, data: str | Path | None = None) -> dict:
        """Nats and bits per character on ``data`` (a text file; default: the held-out tail
        of the training text)."""
        if data is None:
            ids, what = charlm.validation_ids(self.path), "validation split"
        else:
            text = read_text(data)
            ids, what = self.vocab.encode(text[::-1] if self.backward else text, "skip"), str(data)
        nats = charlm.evaluate_ids(self.model, ids)
        return {
            "data": what,
            "chars": int(ids.numel()),
            "nats_per_char": nats,
            "bits_per_char": nats / math.log(2),
            "step": self.meta.get("step"),
        }

    def explain_pieces(self, text: str) -> tuple[Tensor, list[str]]:
        self.forwards_only("explain")
        ids = self.vocab.encode(text)
        return ids, [self.token_name(int(i)) for i in ids]

    def example(self) -> Tensor:
        return charlm.validation_ids(self.path)[:64][None]


class WordRun(LanguageRun):
    """A word model: ``tokenizer`` beside the common fields."""

    unit, pieces, default_length, default_prompt = "words", "tokens", 50, ""
    hidden_ids = (PAD_ID, UNK_ID)

    def __init__(self, path, which, model, meta, config, tokenizer) -> None:
        super().__init__(path, which, model, meta, config)
        self.tokenizer = tokenizer

    @classmethod
    def open(cls, path: str | Path, which: str = "best") -> WordRun:
        model, tokenizer, meta = open_model(path, wordlm.NAME, which, wordlm.model_from)
        config = wordlm.WordLMConfig(**meta["task_config"]["model"])
        return cls(path, which, model, meta, config, tokenizer)

    def names(self) -> list[str]:
        return list(self.tokenizer.tokens)

    def generate(self, prompt: str, length: int, sampling: Sampling | None = None) -> Iterator[str]:
        """Words after ``prompt`` (each with its leading space; a sentence end is a line
        break)."""
        self.forwards_only("generation")
        return wordlm.generate(self.model, self.tokenizer, prompt, length, sampling)

    def finish(self, prompt: str, beam: int = 5, nbest: int = 3) -> list[tuple[str, float]]:
        """The ``nbest`` likeliest endings of the sentence ``prompt`` begins, found by a beam
        ``beam`` wide, with their log-probabilities."""
        self.forwards_only("finishing a sentence")
        return wordlm.finish(self.model, self.tokenizer, prompt, beam, nbest)

    def predict(self, inputs: Sequence[str], top_k: int = 5) -> list[dict]:
        """Each text's ``top_k`` likeliest next words (autocomplete)."""
        self.forwards_only("next-word prediction")
        return [
            {
                "text": text,
                "next": [
                    {"word": w, "p": p}
                    for w, p in wordlm.complete(self.model, self.tokenizer, text, top_k)
                ],
            }
            for text in inputs
        ]

    def test(self) -> dict:
        return self.evaluate(split="test")

    def evaluate(self, data: str | Path | None = None, split: str | None = None) -> dict:
        """Perplexity on ``data`` (a text file, one sentence per line), else on the run's
        ``split`` ("valid" or "test"; None: test if the run has one, else valid)."""
        if data is not None:
            lines = [line.strip() for line in read_text(data).splitlines() if line.strip()]
            scores = wordlm.score_documents(self.model, self.tokenizer, [lines], self.backward)
            return scores | {"data": str(data)}
        if split not in (None, "valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        corpus = wordlm.corpus_from_source(self.meta["task_config"]["source"])
        docs, what = wordlm.held_out(corpus, split)
        scores = wordlm.score_documents(self.model, self.tokenizer, docs, self.backward)
        return scores | {"data": what}

    def token_name(self, i: int) -> str:
        return "<eos>" if i == EOS_ID else self.tokenizer.decode([i])

    def explain_pieces(self, text: str) -> tuple[Tensor, list[str]]:
        self.forwards_only("explain")
        ids = torch.tensor([EOS_ID, *self.tokenizer.encode(text)])  # read as a sentence start
        return ids, [self.token_name(int(i)) + " " for i in ids]

    def example(self) -> Tensor:
        return torch.tensor([EOS_ID, *self.tokenizer.encode(WORDLM_EXAMPLE)])[None]


def charlm_validation(metrics: dict) -> str:
    nats = metrics["val_loss"]
    return f"{nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char"


def wordlm_validation(metrics: dict) -> str:
    nats = metrics["val_loss"]
    return f"{nats:.4f} nats/word, perplexity {math.exp(nats):.2f}"


CHARLM = TaskSpec(
    name=charlm.NAME,
    summary="character language model",
    config=charlm.CharLMConfig,
    presets=awd_preset(charlm.CharLMConfig),
    load=CharRun.open,
    resume=charlm.resume,
    command="elman.tasks.lm.charlm_command",
    served="elman.serve.language:CharModel",
    # chosen with bench/charlm.py beside the model's defaults (see ``CharLMConfig``)
    train_defaults={
        "steps": 5000,
        "optimizer": "adamw",
        "lr": 2e-3,
        "weight_decay": 0.1,
        "warmup": 50,
        "eval_every": 500,
    },
    validation=charlm_validation,
    space=CHARLM_SPACE,
    objective="val_loss",  # nats per character (bits per character is the same up to ln 2)
)
WORDLM = TaskSpec(
    name=wordlm.NAME,
    summary="word language model",
    config=wordlm.WordLMConfig,
    presets=awd_preset(wordlm.WordLMConfig),
    load=WordRun.open,
    resume=wordlm.resume,
    command="elman.tasks.lm.wordlm_command",
    served="elman.serve.language:WordModel",
    train_defaults={
        "steps": 3000,
        "lr": 2e-3,
        "warmup": 100,
        "eval_every": 500,
        "clip_norm": 0.5,
    },
    validation=wordlm_validation,
    space=WORDLM_SPACE,
    objective="val_loss",  # nats per word, the log of the perplexity
)
CharRun.spec, WordRun.spec = CHARLM, WORDLM

__all__ = ["CHARLM", "WORDLM", "CharRun", "LanguageRun", "WordRun"]
