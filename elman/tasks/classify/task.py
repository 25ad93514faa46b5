"""Sequence classification (many-to-one) for text and numeric multivariate series.

Examples are padded per batch and bucketed by length; the recurrent encoder gets the true
``lengths``, so padding never reaches a prediction. Metrics: accuracy, macro-F1 and the
confusion matrix (``elman.tasks.scores``). Data come as ``Examples`` (texts or (T, C) series
with string labels); the class list comes from the training labels, and a label of a
validation/test example that training never saw is an error naming it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.data.batching import PaddedBatch, bucket_batches, collate
from elman.data.labelled import Examples
from elman.data.tokenize import KINDS as TOKENIZER_KINDS
from elman.data.tokenize import Tokenizer
from elman.fields import option
from elman.nn import CELLS
from elman.nn.checks import check_fields
from elman.nn.pooling import POOLINGS
from elman.tasks.awd import Regularizers, regularizers_of
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.classify.sources import load_source
from elman.tasks.rundir import fit_task, resume_run
from elman.tasks.scores import scores
from elman.tasks.transfer import (
    Pretrained,
    architecture,
    check_coverage,
    check_fits,
    copy_embedding,
    copy_encoder,
    layer_groups,
    load_pretrained,
    provenance,
)
from elman.tasks.transfer import tokenizer_of as tokenizer_of_lm
from elman.train import TrainConfig, seed_everything
from elman.train.distributed import rank_and_world
from elman.train.evaluation import evaluating

NAME = "classify"
EVAL_BATCH = 256
NN_ELEMENTS = 2**23  # elements per chunk of 1-NN distances (32 MB of float32)


@dataclass(frozen=True, kw_only=True)
class ClassifyConfig(Regularizers):
    """The classifier and how examples are fed to it. Every field with help is also an option
    of `elman train classify` (``elman.fields``); the defaults are the recommended model."""

    cell: str = option("lstm", f"recurrent cell: {', '.join(CELLS)}", choices=CELLS)
    hidden: int = option(128, "hidden units per layer and direction")
    layers: int = option(1, "stacked recurrent layers")
    bidirectional: bool = option(True, "read each sequence in both directions")
    pooling: str = option(
        "max", f"how outputs become one vector: {', '.join(POOLINGS)}", choices=POOLINGS
    )
    dropout: float = option(0.3, "dropout between layers and before the classifier, in [0, 1)")
    # on for numeric series, where it beat 1-NN Euclidean on sets the recurrent encoder alone
    # lost on; off for text
    conv: bool | None = option(
        None,
        "add the LSTM-FCN convolutional branch (None: on for numeric series, off for "
        "text; --no-conv for a series model that streams)",
    )
    embedding: int = option(128, "text: word embedding size")
    embed_dropout: float = option(0.0, "text: dropout on the embeddings, in [0, 1)")
    word_dropout: float = option(0.0, "text: share of training tokens replaced by <unk>, in [0, 1)")
    tokenizer: str = option("word", "text: char, word, whitespace or bpe", choices=TOKENIZER_KINDS)
    lower: bool = option(True, "text: lower-case before tokenizing")
    min_freq: int = option(1, "text: rarer tokens become <unk>")
    max_vocab: int | None = option(None, "text: largest vocabulary")
    batch_size: int = option(32, "examples per batch")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(
            self,
            {"cell": CELLS, "pooling": POOLINGS, "tokenizer": TOKENIZER_KINDS},
            ("hidden", "layers", "embedding", "min_freq", "batch_size"),
            ("max_vocab",),
            ("dropout", "embed_dropout", "word_dropout"),
            ("bidirectional", "lower"),
        )
        if self.conv is not None and not isinstance(self.conv, bool):
            raise TypeError(f"conv must be True, False or None, got {self.conv!r}")


def class_ids(labels: Sequence[str], classes: Sequence[str], what: str) -> Tensor:
    order = {c: i for i, c in enumerate(classes)}
    unseen = sorted({str(x) for x in labels} - set(order))
    if unseen:
        raise ValueError(
            f"{what}: label(s) {unseen[:5]} never occur in training; "
            f"the model knows {list(order)[:20]}"
        )
    return torch.tensor([order[str(x)] for x in labels], dtype=torch.int64)


class Encoder:
    """Turns raw inputs into model inputs: token ids for text, checked (T, C) for series."""

    def __init__(self, kind: str, tokenizer: Tokenizer | None, channels: int | None) -> None:
        self.kind, self.tokenizer, self.channels = kind, tokenizer, channels

    def __call__(self, inputs: Sequence, what: str) -> list[Tensor]:
        out = []
        for i, item in enumerate(inputs):
            if self.kind == "text":
                if not isinstance(item, str) or not item.strip():
                    raise ValueError(f"{what} example {i}: expected a non-empty text, got {item!r}")
                ids = self.tokenizer.encode(item)  # type: ignore[union-attr]
                if not ids:
                    raise ValueError(f"{what} example {i}: {item!r} has no tokens")
                out.append(torch.tensor(ids, dtype=torch.int64))
            else:
                out.append(self._series(item, f"{what} example {i}"))
        return out

    def _series(self, item, where: str) -> Tensor:
        try:
            x = torch.as_tensor(item, dtype=torch.float32)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: expected numbers, got {type(item).__name__} ({e})") from e
        if x.dim() == 1:
            x = x[:, None]
        if x.dim() != 2 or x.shape[0] < 1 or x.shape[1] != self.channels:
            raise ValueError(
                f"{where}: expected a series of shape (T, {self.channels}), got {tuple(x.shape)}"
            )
        if bool(torch.isinf(x).any()):
            raise ValueError(f"{where}: infinite values; use NaN for missing ones")
        return x


def fit_scaling(series: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation over every step of every series (NaN skipped)."""
    values = torch.cat(list(series), dim=0)
    finite = ~torch.isnan(values)
    count = finite.sum(0).clamp(min=1)
    mean = torch.where(finite, values, 0).sum(0) / count
    var = torch.where(finite, (values - mean) ** 2, 0).sum(0) / count
    return mean, var.sqrt().clamp(min=1e-6)


def build_model(config: ClassifyConfig, classes: int, encoder: Encoder) -> SequenceClassifier:
    c = config
    common = dict(
        classes=classes,
        cell=c.cell,
        hidden=c.hidden,
        layers=c.layers,
        bidirectional=c.bidirectional,
        dropout=c.dropout,
        pooling=c.pooling,
        conv=encoder.kind == "series" if c.conv is None else c.conv,
        regularizers=regularizers_of(c),
    )
    if encoder.kind == "text":
        return SequenceClassifier(
            **common,
            vocab_size=len(encoder.tokenizer),  # type: ignore[arg-type]
            embedding=c.embedding,
            embed_dropout=c.embed_dropout,
            word_dropout=c.word_dropout,
        )
    for name in ("embed_dropout", "word_dropout", "token_dropout"):
        if getattr(c, name):
            raise ValueError(f"{name}: applies to text input only, got {getattr(c, name)!r}")
    return SequenceClassifier(**common, channels=encoder.channels)


class ClassifyTask:
    """The trainer's view of classification (see ``elman.train.Task``). ``classes`` and
    ``tokenizer`` are given when rebuilding a trained model, else fitted on ``train``."""

    name = NAME
    unit = "examples"  # what the trainer's throughput counts (``loss`` returns examples)

    def __init__(
        self,
        train: Examples,
        valid: Examples,
        config: ClassifyConfig,
        seed: int = 0,
        classes: Sequence[str] | None = None,
        tokenizer: Tokenizer | None = None,
        source: dict | None = None,
    ) -> None:
        if train.kind != valid.kind:
            raise ValueError(f"train is {train.kind} but valid is {valid.kind}")
        self.config, self.seed, self.source = config, seed, source or {}
        self.classes = tuple(classes or sorted({str(x) for x in train.labels}))
        self.encoder = self._encoder(train, tokenizer)
        self.train_x = self.encoder(train.inputs, "training")
        self.train_y = class_ids(train.labels, self.classes, "training")
        self.valid_x = self.encoder(valid.inputs, "validation")
        self.valid_y = class_ids(valid.labels, self.classes, "validation")
        self.model = build_model(config, len(self.classes), self.encoder)
        self.init_from: dict | None = None  # what initialised the model (``initialise``)
        self._train_texts = [str(t) for t in train.inputs] if train.kind == "text" else []
        if train.kind == "series":  # a rebuilt model's checkpoint overwrites these again
            mean, std = fit_scaling(self.train_x)
            self.model.scale_mean.copy_(mean)
            self.model.scale_std.copy_(std)

    def _encoder(self, train: Examples, tokenizer: Tokenizer | None) -> Encoder:
        if train.kind == "text":
            c = self.config
            tokenizer = tokenizer or Tokenizer.fit(
                [str(t) for t in train.inputs], c.tokenizer, c.min_freq, c.max_vocab, c.lower
            )
            return Encoder("text", tokenizer, None)
        first = torch.as_tensor(train.inputs[0], dtype=torch.float32)
        return Encoder("series", None, 1 if first.dim() == 1 else int(first.shape[-1]))

    def initialise(self, lms: list[Pretrained]) -> None:
        """Copy the LMs' embeddings and encoder into the model (``elman.tasks.transfer``);
        the task must have been built with ``tokenizer_of(lms[0])``."""
        if self.encoder.kind != "text":
            raise ValueError("--init-from: a numeric-series classifier reads no tokens")
        c = self.config
        check_fits({k: getattr(c, k) for k in architecture(lms)}, lms)
        tokenizer = self.encoder.tokenizer
        known = 1.0 - tokenizer.unknown_rate(self._train_texts)
        check_coverage(known, len(tokenizer), "training texts")
        rows = copy_embedding(self.model.embed, tokenizer.tokens, lms[0])
        layers = copy_encoder(self.model.rnn, lms)
        self.init_from = provenance(lms, rows, layers) | {"coverage": known}

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embedding, each recurrent layer, then pooling and the classifier (ULMFiT)."""
        return layer_groups(self.model, ("embed",), "rnn")

    def batches(self, epoch: int) -> list[PaddedBatch]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        lengths = [len(x) for x in self.train_x]
        rank, world = rank_and_world()
        out = []
        for index in bucket_batches(lengths, self.config.batch_size, g):
            if len(index) >= world:  # every rank needs rows of every batch
                out.append(collate(self.train_x, index[rank::world], self.train_y))
        return out

    def loss(self, model: nn.Module, batch: PaddedBatch, carry):
        logits, extra = model(batch.x, batch.lengths, with_penalty=True)
        nats = F.cross_entropy(logits, batch.y)
        return nats + extra, len(batch.lengths), None, nats

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        result = evaluate(model, self.valid_x, self.valid_y, len(self.classes))
        return {f"val_{k}": v for k, v in result.items() if k != "confusion"} | {
            "val_loss": result["loss"]
        }

    def describe(self) -> dict:
        tok = self.encoder.tokenizer
        return {
            "model": asdict(self.config),
            "kind": self.encoder.kind,
            "classes": list(self.classes),
            "channels": self.encoder.channels,
            "tokenizer": None if tok is None else tok.to_json(),
            "source": self.source,
            "seed": self.seed,
            "init_from": self.init_from,
        }


def predict_logits(model: nn.Module, inputs: Sequence[Tensor]) -> Tensor:
    """Logits (N, K) of encoded ``inputs``, in their order (batched by length inside)."""
    lengths = [len(x) for x in inputs]
    out = torch.empty(0)
    with evaluating(model) as to_model:
        for index in bucket_batches(lengths, EVAL_BATCH, shuffle=False):
            batch = to_model(collate(inputs, index))
            logits = model(batch.x, batch.lengths)
            if out.numel() == 0:
                out = logits.new_empty(len(inputs), logits.shape[1])
            out[batch.index] = logits
    return out.cpu()


def evaluate(model: nn.Module, inputs: Sequence[Tensor], targets: Tensor, classes: int) -> dict:
    """Mean cross-entropy, accuracy, macro-F1 and confusion matrix of ``model`` on a data set."""
    logits = predict_logits(model, inputs)
    loss = float(F.cross_entropy(logits, targets))
    return {"loss": loss if math.isfinite(loss) else math.inf} | scores(
        targets, logits.argmax(1), classes
    )


def baselines(train: Examples, scored: Examples) -> dict[str, float]:
    """Accuracy on ``scored`` of two answers that need no training beyond ``train``: the
    majority class, and for series the label of the nearest training series (1-NN by
    Euclidean distance, the standard time-series baseline). A model below them is worse than
    the trivial answer."""
    labels = [str(x) for x in train.labels]
    majority = max(sorted(set(labels)), key=labels.count)
    truth = [str(x) for x in scored.labels]
    out = {"majority_class": sum(y == majority for y in truth) / len(truth)}
    if train.kind == "series":
        guess = [labels[i] for i in nearest(train.inputs, scored.inputs)]
        out["nn1_euclidean"] = sum(g == y for g, y in zip(guess, truth, strict=True)) / len(truth)
    return out


def nearest(reference: Sequence, queries: Sequence) -> list[int]:
    """For each query series, the index of the closest ``reference`` series: squared
    Euclidean distance, averaged over the steps and channels both have (so series of unequal
    length or with missing values compare; for equal lengths this is plain 1-NN Euclidean)."""
    ref = _stack(reference)  # (N, T, C), NaN-padded
    chunk = max(1, NN_ELEMENTS // ref.numel())  # bounds the (Q, N, T, C) differences
    found = []
    for start in range(0, len(queries), chunk):
        q = _stack(queries[start : start + chunk], ref.shape[1])[:, None]  # (Q, 1, T, C)
        d = (q - ref[None]) ** 2  # (Q, N, T, C)
        both = ~torch.isnan(d)
        mean = torch.where(both, d, 0).sum((2, 3)) / both.sum((2, 3)).clamp(min=1)
        mean = torch.where(both.any(3).any(2), mean, torch.inf)  # nothing in common: farthest
        found += mean.argmin(1).tolist()
    return found


def _stack(series: Sequence, steps: int | None = None) -> Tensor:
    """(N, steps, C) of (T, C) or (T,) series, NaN-padded (cut to ``steps`` if given)."""
    xs = [torch.as_tensor(x, dtype=torch.float32) for x in series]
    xs = [x[:, None] if x.dim() == 1 else x for x in xs]
    steps = steps or max(len(x) for x in xs)
    out = torch.full((len(xs), steps, xs[0].shape[1]), torch.nan)
    for i, x in enumerate(xs):
        out[i, : min(len(x), steps)] = x[:steps]
    return out


# ---- runs ------------------------------------------------------------------------------
def train(
    source: dict,
    config: ClassifyConfig,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    epochs: int | None = None,
    init_from: Sequence[str | Path] = (),
) -> dict[str, float]:
    """Train a classifier on the data ``source`` describes (``classify_sources``) into ``out``;
    ``init_from``: one or two LM runs whose vocabulary, embeddings and encoder it starts from
    (``config`` must fit them: ``elman.tasks.transfer.architecture`` gives the fields)."""
    seed_everything(train_config.seed)
    lms = load_pretrained(list(init_from)) if init_from else []
    tokenizer = tokenizer_of_lm(lms[0]) if lms else None
    task = task_from_source(source, config, train_config.seed, tokenizer=tokenizer)
    if lms:
        task.initialise(lms)
    return fit_task(task, train_config, out, until, epochs)


def task_from_source(
    source: dict, config: ClassifyConfig, seed: int, classes=None, tokenizer=None
) -> ClassifyTask:
    train_set, valid_set, _ = load_source(source)
    return ClassifyTask(train_set, valid_set, config, seed, classes, tokenizer, source)


def _task_from_meta(meta: dict) -> ClassifyTask:
    info = meta["task_config"]
    config, tokenizer = ClassifyConfig(**info["model"]), tokenizer_of(info)
    task = task_from_source(info["source"], config, info["seed"], info["classes"], tokenizer)
    task.init_from = info.get("init_from")  # the checkpoint holds the weights it led to
    return task


def tokenizer_of(info: dict) -> Tokenizer | None:
    """The tokenizer a checkpoint's ``task_config`` records (None for series)."""
    return None if info["tokenizer"] is None else Tokenizer.from_json(info["tokenizer"])


def model_from(info: dict) -> tuple[SequenceClassifier, Encoder]:
    """The (untrained) network and input encoder a checkpoint's ``task_config`` describes."""
    encoder = Encoder(info["kind"], tokenizer_of(info), info["channels"])
    return build_model(ClassifyConfig(**info["model"]), len(info["classes"]), encoder), encoder


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


__all__ = [
    "ClassifyConfig",
    "ClassifyTask",
    "Encoder",
    "baselines",
    "build_model",
    "evaluate",
    "model_from",
    "nearest",
    "predict_logits",
    "resume",
    "train",
]
