"""Sequence tagging (many-to-many, one tag per word): part-of-speech tagging and the like.

Data are sentences of (word, tag) pairs: the Brown corpus (``{"kind": "brown", "path": DIR}``,
split by file) or two-column files (``{"kind": "conll", "train": F, "valid": F, "test": F}``:
``word<TAB>tag`` per line, a blank line between sentences). Words are looked up lower-cased;
words the training data never had map to ``<unk>`` and are tagged from their spelling by the
character CNN. Metrics: token accuracy, and accuracy on tokens unseen in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from elman.data.batching import bucket_batches, pad
from elman.data.brown import Sentence, parse_line, read_brown
from elman.data.text import read_text
from elman.data.tokenize import UNK_ID, Tokenizer
from elman.fields import option
from elman.nn import CELLS
from elman.nn.checks import check_fields
from elman.tasks.rundir import fit_split_source, resume_run, split_task_from_meta
from elman.tasks.tag.model import IGNORE, TagBatch, Tagger
from elman.train import TrainConfig
from elman.train.distributed import rank_and_world
from elman.train.evaluation import evaluating

NAME = "tag"
UNSEEN_TAG = -1  # a held-out tag the training data never had: always a mistake
MAX_WORD = 20  # characters of a word the CNN reads (long numbers, URLs: the first 20)
EVAL_BATCH = 128


@dataclass(frozen=True, kw_only=True)
class TagConfig:
    """The tagger and how sentences are fed to it. Every field with help is also an option
    of `elman train tag` (``elman.fields``); the defaults are the recommended model."""

    cell: str = option(
        "lstm", f"recurrent cell (run in both directions): {', '.join(CELLS)}", choices=CELLS
    )
    word_embedding: int = option(100, "word embedding size")
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

    def __post_init__(self) -> None:
        check_fields(
            self,
            {"cell": CELLS},
            ("word_embedding", "char_embedding", "hidden", "layers", "min_freq", "batch_size"),
            rates=("dropout",),
            flags=("crf",),
        )
        if (
            isinstance(self.char_filters, bool)
            or not isinstance(self.char_filters, int)
            or (self.char_filters < 0)
        ):
            raise ValueError(f"char_filters must be an integer >= 0, got {self.char_filters!r}")


# ---- data ------------------------------------------------------------------------------
def read_conll(path: str | Path) -> list[Sentence]:
    """Sentences of a ``word<TAB>tag`` file (blank lines between sentences)."""
    sentences, current = [], []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ValueError(
                f"{Path(path).name} line {number}: expected 'word<TAB>tag', got {line!r}"
            )
        current.append((parts[0].strip(), parts[1].strip()))
    if current:
        sentences.append(current)
    return sentences


def check_tags(sentences: Sequence[Sentence], tags: Sequence[str], path: str | Path) -> None:
    """Refuse a file to score none of whose tags the model knows: it is not ``word<TAB>tag``
    data for this model (plain sentences split on spaces, ``word/tag`` tokens), and scoring
    it would report accuracy 0 instead of the problem."""
    known = set(tags)
    if any(t in known for s in sentences for _, t in s):
        return
    number, line = next((i, x) for i, x in enumerate(read_text(path).splitlines(), 1) if x.strip())
    raise ValueError(
        f"{Path(path).name} line {number}: expected 'word<TAB>tag', got {line!r}; none of the "
        f"file's tags is among the model's {len(known)} tags {sorted(known)[:10]}"
    )


def load_source(source: dict) -> tuple[list[Sentence], list[Sentence], list[Sentence]]:
    """(train, valid, test) sentences of a data source (see the module docstring)."""
    if source.get("kind") == "brown":
        brown = read_brown(source["path"])
        parts = brown.split()
        return tuple(brown.sentences(parts[k]) for k in ("train", "valid", "test"))  # type: ignore[return-value]
    if source.get("kind") == "conll":
        test = read_conll(source["test"]) if source.get("test") else []
        return read_conll(source["train"]), read_conll(source["valid"]), test
    raise ValueError(
        f"tagging data source kind must be 'brown' or 'conll', got {source.get('kind')!r}"
    )


@dataclass(frozen=True)
class Vocabularies:
    """Words (lower-cased), characters (case kept) and tags."""

    words: Tokenizer
    chars: Tokenizer
    tags: tuple[str, ...]

    @classmethod
    def fit(cls, sentences: Sequence[Sentence], min_freq: int) -> Vocabularies:
        words = [" ".join(w for w, _ in s) for s in sentences]
        return cls(
            Tokenizer.fit(words, "whitespace", min_freq, lower=True),
            Tokenizer.fit(words, "char"),
            tuple(sorted({t for s in sentences for _, t in s})),
        )

    def to_json(self) -> dict:
        return {
            "words": self.words.to_json(),
            "chars": self.chars.to_json(),
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict) -> Vocabularies:
        return cls(
            Tokenizer.from_json(data["words"]),
            Tokenizer.from_json(data["chars"]),
            tuple(data["tags"]),
        )

    def encode(
        self,
        words: Sequence[str],
        tags: Sequence[str] | None = None,
        what: str = "input",
        unseen: str = "error",
    ):
        """(word ids (T,), char ids (T, MAX_WORD), tag ids (T,) or None) of one sentence.

        unseen: a tag training never had is an error ("error"), or gets id ``UNSEEN_TAG``
        ("wrong"), which no prediction matches: evaluation counts it as a mistake."""
        if not words:
            raise ValueError(f"{what}: an empty sentence; expected at least one word")
        w = torch.tensor(self.words.ids(list(words)), dtype=torch.int64)
        c = torch.zeros(len(words), MAX_WORD, dtype=torch.int64)
        for i, word in enumerate(words):
            ids = self.chars.ids(list(word[:MAX_WORD]))
            c[i, : len(ids)] = torch.tensor(ids)
        if tags is None:
            return w, c, None
        index = {t: i for i, t in enumerate(self.tags)}
        missing = sorted(set(tags) - set(index))
        if missing and unseen == "error":
            raise ValueError(f"{what}: tag(s) {missing[:5]} never occur in training")
        ids = [index.get(t, UNSEEN_TAG) for t in tags]
        return w, c, torch.tensor(ids, dtype=torch.int64)


Encoded = list[tuple[Tensor, Tensor, Tensor | None]]


def encode_sentences(
    vocab: Vocabularies, sentences: Sequence[Sentence], what: str, unseen: str = "wrong"
) -> Encoded:
    """Encoded tagged sentences; tags training never had count as mistakes (``unseen``)."""
    return [
        vocab.encode([w for w, _ in s], [t for _, t in s], f"{what} sentence {i}", unseen)
        for i, s in enumerate(sentences)
    ]


def collate(data: Encoded, index: Sequence[int]) -> TagBatch:
    rows = [data[i] for i in index]
    words, lengths = pad([r[0] for r in rows])
    chars, _ = pad([r[1] for r in rows])
    tags = None if rows[0][2] is None else pad([r[2] for r in rows], IGNORE)[0]
    return TagBatch(words, chars, lengths, tags, torch.as_tensor(index, dtype=torch.int64))


# ---- model and task --------------------------------------------------------------------
def build_model(vocab: Vocabularies, config: TagConfig) -> Tagger:
    c = config
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
    for (words, _, tags), pred in zip(data, predicted, strict=True):
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
    ) -> None:
        self.config, self.seed, self.source = config, seed, source or {}
        self.vocab = vocab or Vocabularies.fit(train, config.min_freq)
        self.train_data = encode_sentences(self.vocab, train, "training")
        self.valid_data = encode_sentences(self.vocab, valid, "validation")
        self.model = build_model(self.vocab, config)

    def batches(self, epoch: int) -> list[TagBatch]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        rank, world = rank_and_world()
        index = bucket_batches([len(d[0]) for d in self.train_data], self.config.batch_size, g)
        return [collate(self.train_data, b[rank::world]) for b in index if len(b) >= world]

    def loss(self, model: nn.Module, batch: TagBatch, carry):
        loss, tokens = model(batch)  # forward(), so data-parallel training syncs gradients
        return loss, tokens, None

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        scores = accuracy(model, self.valid_data)
        nll = _mean_loss(model, self.valid_data)
        return {
            "val_loss": nll,
            "val_accuracy": scores["accuracy"],
            "val_unseen_accuracy": scores["unseen_accuracy"],
        }

    def describe(self) -> dict:
        return {
            "model": asdict(self.config),
            "vocab": self.vocab.to_json(),
            "source": self.source,
            "seed": self.seed,
        }


def _mean_loss(model: Tagger, data: Encoded) -> float:
    """Nats per token over the sentences whose tags are all known (a tag training never had
    has no score to take a loss of; accuracy still counts it)."""
    data = [d for d in data if int(d[2].min()) >= 0]
    total = count = 0.0
    with evaluating(model) as to_model:
        for index in bucket_batches([len(d[0]) for d in data], EVAL_BATCH, shuffle=False):
            loss, tokens = model.loss(to_model(collate(data, index)))
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
) -> dict[str, float]:
    """Train a tagger on the data ``source`` describes into ``out``."""
    return fit_split_source(load_source, TagTask, source, config, train_config, out, until, epochs)


def _task_from_meta(meta: dict) -> TagTask:
    return split_task_from_meta(meta, load_source, TagTask, TagConfig, Vocabularies)


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


def model_from(info: dict) -> tuple[Tagger, Vocabularies]:
    """The (untrained) tagger and vocabularies a checkpoint's ``task_config`` describes."""
    vocab = Vocabularies.from_json(info["vocab"])
    return build_model(vocab, TagConfig(**info["model"])), vocab


def tag(model: Tagger, vocab: Vocabularies, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tags of tokenized ``sentences`` (lists of words)."""
    data = [vocab.encode(list(s), None, f"sentence {i}") for i, s in enumerate(sentences)]
    return [[vocab.tags[t] for t in path] for path in decode(model, data)]


__all__ = [
    "TagConfig",
    "TagTask",
    "Vocabularies",
    "accuracy",
    "check_tags",
    "encode_sentences",
    "model_from",
    "parse_line",
    "read_conll",
    "resume",
    "tag",
    "train",
]
