"""Sequence tagging (many-to-many, one tag per word): part-of-speech tagging and the like.

Data are sentences of (word, tag) pairs: the Brown corpus (``{"kind": "brown", "path": DIR}``,
split by file) or two-column files (``{"kind": "conll", "train": F, "valid": F, "test": F}``:
``word<TAB>tag`` per line, a blank line between sentences); see ``elman.tasks.tag.data``.
Words are looked up lower-cased; words the training data never had map to ``<unk>`` and are
tagged from their spelling by the character CNN (and, with contextual string embeddings, from
two pretrained character LMs' reading of the sentence). Metrics: token accuracy, and accuracy
on tokens unseen in training.

With contextual string embeddings (``TagConfig.strings``, ``elman.tasks.tag.strings``) the LMs
are frozen, so each training and validation sentence's features are computed once, on first
use, and kept in memory in float16 (``strings.CACHE_DTYPE``); dropout still acts on them in
training (the tagger's input dropout). Sentences tagged or scored later are read by the LMs
the same way, rounded alike, so a run scores its validation split as training did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from elman.data.batching import bucket_batches
from elman.data.brown import Sentence, parse_line
from elman.data.tokenize import UNK_ID
from elman.fields import option
from elman.nn import CELLS
from elman.nn.checks import check_fields
from elman.tasks.awd import Regularizers, regularizers_of
from elman.tasks.rundir import fit_split_source, resume_run, split_task_from_meta
from elman.tasks.tag.data import (
    MAX_WORD,
    UNSEEN_TAG,
    Encoded,
    Vocabularies,
    check_tags,
    collate,
    encode_sentences,
    load_source,
    read_conll,
    with_strings,
)
from elman.tasks.tag.model import TagBatch, Tagger
from elman.tasks.tag.strings import ContextualStrings
from elman.tasks.transfer import (
    Pretrained,
    check_coverage,
    check_fits,
    copy_embedding,
    copy_encoder,
    layer_groups,
    load_pretrained,
    provenance,
)
from elman.train import TrainConfig
from elman.train.distributed import rank_and_world
from elman.train.evaluation import evaluating

NAME = "tag"
EVAL_BATCH = 128


@dataclass(frozen=True, kw_only=True)
class TagConfig(Regularizers):
    """The tagger and how sentences are fed to it. Every field with help is also an option
    of `elman train tag` (``elman.fields``); the defaults are the recommended model.
    ``strings``: the tagger reads contextual string embeddings from two character LMs (given
    beside the config: `--strings FORWARD_RUN BACKWARD_RUN`, or ``train(..., strings=)``)."""

    cell: str = option(
        "lstm", f"recurrent cell (run in both directions): {', '.join(CELLS)}", choices=CELLS
    )
    word_embedding: int = option(
        100, "word embedding size (0: none, only with contextual string embeddings)"
    )
    char_embedding: int = option(25, "character embedding size")
    char_filters: int = option(50, "character CNN filters (0: no character features)")
    hidden: int = option(128, "hidden units per direction")
    layers: int = option(1, "stacked recurrent layers")
    dropout: float = option(0.5, "dropout around the recurrent layers, in [0, 1)")
    crf: bool = option(True, "CRF output layer (Viterbi decoding) instead of a per-word softmax")
    min_freq: int = option(
        2, "rarer training words become <unk> (so spelling alone is learned too)"
    )
    batch_size: int = option(32, "sentences per batch")
    strings: bool = False  # set by --strings, which names the LM runs

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(
            self,
            {"cell": CELLS},
            ("char_embedding", "hidden", "layers", "min_freq", "batch_size"),
            rates=("dropout",),
            flags=("crf", "strings"),
        )
        for name in ("word_embedding", "char_filters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.word_embedding == 0 and not self.strings:
            raise ValueError(
                "word_embedding must be a positive integer, got 0: a tagger without word "
                "embeddings needs contextual string embeddings (--strings FORWARD_RUN "
                "BACKWARD_RUN)"
            )


# ---- model and task --------------------------------------------------------------------
def build_model(
    vocab: Vocabularies, config: TagConfig, strings: ContextualStrings | None = None
) -> Tagger:
    """The tagger ``config`` describes; ``strings`` exactly when ``config.strings``."""
    c = config
    if c.strings != (strings is not None):
        raise ValueError(
            "strings: a tagger with contextual string embeddings (strings=True) needs a forward "
            "and a backward character LM (--strings FORWARD_RUN BACKWARD_RUN), and only it; "
            f"got strings={c.strings} with {'no' if strings is None else 'two'} LMs"
        )
    return Tagger(
        len(vocab.words),
        len(vocab.chars),
        len(vocab.tags),
        c.cell,
        c.word_embedding,
        c.char_embedding,
        c.char_filters,
        c.hidden,
        c.layers,
        c.dropout,
        c.crf,
        regularizers_of(c),
        strings,
    )


def decode(model: Tagger, data: Encoded) -> list[list[int]]:
    """Predicted tag ids of every sentence, in order."""
    out: list[list[int]] = [[] for _ in data]
    with evaluating(model) as to_model:
        for index in bucket_batches([len(d[0]) for d in data], EVAL_BATCH, shuffle=False):
            batch = to_model(collate(data, index))
            for i, path in zip(index, model.decode(batch), strict=True):
                out[i] = path
    return out


def accuracy(model: Tagger, data: Encoded) -> dict[str, float]:
    """Token accuracy, and accuracy on tokens whose word is unknown to the model (``<unk>``)."""
    predicted = decode(model, data)
    right = total = unk_right = unk_total = 0
    for (words, _, tags, *_), pred in zip(data, predicted, strict=True):
        hit = torch.tensor(pred) == tags
        unk = words == UNK_ID
        right, total = right + int(hit.sum()), total + len(pred)
        unk_right, unk_total = unk_right + int(hit[unk].sum()), unk_total + int(unk.sum())
    return {
        "accuracy": right / max(total, 1),
        "unseen_accuracy": unk_right / max(unk_total, 1),
        "tokens": total,
        "unseen_tokens": unk_total,
    }


class TagTask:
    """The trainer's view of tagging (see ``elman.train.Task``)."""

    name = NAME

    def __init__(
        self,
        train: Sequence[Sentence],
        valid: Sequence[Sentence],
        config: TagConfig,
        seed: int = 0,
        vocab: Vocabularies | None = None,
        source: dict | None = None,
        strings: ContextualStrings | None = None,
    ) -> None:
        self.config, self.seed, self.source = config, seed, source or {}
        self.vocab = vocab or Vocabularies.fit(train, config.min_freq)
        self.train_data = encode_sentences(self.vocab, train, "training")
        self.valid_data = encode_sentences(self.vocab, valid, "validation")
        self.model = build_model(self.vocab, config, strings)
        self.init_from: dict | None = None  # the word LMs it started from (``initialise``)
        # the LM features wait for first use: a resumed run's LM weights come from its
        # checkpoint, which the trainer restores after building the task
        self._words = None
        if strings is not None:
            self._words = [[w for w, _ in s] for s in (*train, *valid)]

    def initialise(self, lms: list[Pretrained], train: Sequence[Sentence]) -> None:
        """Start from a forward and a backward word LM (``elman.tasks.transfer``): their
        embedding rows for the tagger's words, and their layers as the two directions."""
        c = self.config
        if lms[0].tokenizer is None:
            raise ValueError(
                "--init-from: a tagger's word embeddings need word LMs; character LMs give "
                "it contextual string embeddings instead (--strings FORWARD_RUN BACKWARD_RUN)"
            )
        if c.char_filters or c.strings:
            raise ValueError(
                "--init-from: the LMs' recurrent layers read word embeddings alone, so the "
                "tagger must too: train it with --char-filters 0 and without --strings"
            )
        sizes = {"cell": c.cell, "embedding": c.word_embedding, "hidden": c.hidden}
        check_fits(sizes | {"layers": c.layers, "bidirectional": True}, lms)
        vocabulary = set(lms[0].tokens)
        words = [w.lower() for s in train for w, _ in s]
        known = sum(w in vocabulary for w in words) / max(1, len(words))
        check_coverage(known, len(vocabulary), "training sentences")
        rows = copy_embedding(self.model.embed, self.vocab.words.tokens, lms[0])
        layers = copy_encoder(self.model.rnn, lms)
        self.init_from = provenance(lms, rows, layers) | {"coverage": known}

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Word and character embeddings, each recurrent layer, then the output (ULMFiT)."""
        return layer_groups(self.model, ("embed", "chars"), "rnn")

    def cache_strings(self) -> None:
        """Compute and keep every sentence's contextual string features, once (on first use
        by ``batches`` or ``evaluate``; call it earlier to time it apart)."""
        if self._words is None:
            return
        n = len(self.train_data)
        data = with_strings([*self.train_data, *self.valid_data], self._words, self.model.strings)
        self.train_data, self.valid_data, self._words = data[:n], data[n:], None

    def batches(self, epoch: int) -> list[TagBatch]:
        self.cache_strings()
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        rank, world = rank_and_world()
        index = bucket_batches([len(d[0]) for d in self.train_data], self.config.batch_size, g)
        return [collate(self.train_data, b[rank::world]) for b in index if len(b) >= world]

    def loss(self, model: nn.Module, batch: TagBatch, carry):
        loss, tokens, nats = model(batch)  # forward(): data-parallel training syncs gradients
        return loss, tokens, None, nats

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        self.cache_strings()
        scores = accuracy(model, self.valid_data)
        nll = _mean_loss(model, self.valid_data)
        return {
            "val_loss": nll,
            "val_accuracy": scores["accuracy"],
            "val_unseen_accuracy": scores["unseen_accuracy"],
        }

    def describe(self) -> dict:
        strings = self.model.strings
        return {
            "model": asdict(self.config),
            "vocab": self.vocab.to_json(),
            "source": self.source,
            "seed": self.seed,
            **({} if strings is None else {"strings": strings.describe()}),
            **({} if self.init_from is None else {"init_from": self.init_from}),
        }


def _mean_loss(model: Tagger, data: Encoded) -> float:
    """Nats per token over the sentences whose tags are all known (a tag training never had
    has no score to take a loss of; accuracy still counts it)."""
    data = [d for d in data if int(d[2].min()) >= 0]
    total = count = 0.0
    with evaluating(model) as to_model:
        for index in bucket_batches([len(d[0]) for d in data], EVAL_BATCH, shuffle=False):
            loss, tokens, _ = model.loss(to_model(collate(data, index)))
            total, count = total + float(loss) * tokens, count + tokens
    return total / max(count, 1)


# ---- runs ------------------------------------------------------------------------------
def train(
    source: dict,
    config: TagConfig,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    epochs: int | None = None,
    strings: ContextualStrings | None = None,
    init_from: Sequence[str | Path] = (),
) -> dict[str, float]:
    """Train a tagger on the data ``source`` describes into ``out``; ``strings``: the frozen
    character LMs of a tagger with ``config.strings`` (``elman.tasks.tag.lms.load_strings``),
    copied into its checkpoint; ``init_from``: a forward and a backward word LM run to start
    from (``TagTask.initialise``)."""
    lms = load_pretrained(list(init_from)) if init_from else []

    def make(train: Sequence[Sentence], *args, **kwargs) -> TagTask:
        task = TagTask(train, *args, strings=strings, **kwargs)
        if lms:
            task.initialise(lms, train)
        return task

    return fit_split_source(load_source, make, source, config, train_config, out, until, epochs)


def strings_from(info: dict) -> ContextualStrings | None:
    """The LM pair (untrained weights) a checkpoint's ``task_config`` names, if any."""
    found = info.get("strings")
    return None if found is None else ContextualStrings.from_header(found)


def _task_from_meta(meta: dict) -> TagTask:
    make = partial(TagTask, strings=strings_from(meta["task_config"]))
    task = split_task_from_meta(meta, load_source, make, TagConfig, Vocabularies)
    task.init_from = meta["task_config"].get("init_from")  # its weights are in the checkpoint
    return task


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


def model_from(info: dict) -> tuple[Tagger, Vocabularies]:
    """The (untrained) tagger and vocabularies a checkpoint's ``task_config`` describes."""
    vocab = Vocabularies.from_json(info["vocab"])
    return build_model(vocab, TagConfig(**info["model"]), strings_from(info)), vocab


def tag(model: Tagger, vocab: Vocabularies, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tags of tokenized ``sentences`` (lists of words)."""
    data = [vocab.encode(list(s), None, f"sentence {i}") for i, s in enumerate(sentences)]
    data = with_strings(data, sentences, model.strings)
    return [[vocab.tags[t] for t in path] for path in decode(model, data)]


__all__ = [
    "MAX_WORD",
    "UNSEEN_TAG",
    "TagConfig",
    "TagTask",
    "Vocabularies",
    "accuracy",
    "build_model",
    "check_tags",
    "collate",
    "encode_sentences",
    "load_source",
    "model_from",
    "parse_line",
    "read_conll",
    "resume",
    "strings_from",
    "tag",
    "train",
    "with_strings",
]
