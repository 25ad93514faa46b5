"""A trained classifier as a ``Run``: labels and class probabilities of raw texts or series,
its scores on labelled data (beside the no-training baselines for series), streams of
unidirectional models, and its ONNX graph checked on the run's own held-out examples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from torch import Tensor

from elman.data.batching import collate
from elman.data.labelled import MAX_CHARS, Examples, read_table
from elman.data.ucr import read_ts
from elman.graphs import onnx as ox
from elman.graphs.graph import REAL_ROWS, Export, held_out
from elman.tasks import spaces
from elman.tasks.awd import awd_preset
from elman.tasks.classify import task
from elman.tasks.classify.graphs import classifier_graphs
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.classify.sources import load_source
from elman.tasks.classify.stream import ClassifyStream
from elman.tasks.rundir import open_model, recorded_source
from elman.tasks.spec import Run, TaskSpec


class ClassifyRun(Run):
    """A trained classifier: its ``model`` (a ``SequenceClassifier``), the ``encoder`` that
    reads raw inputs (``encoder.kind``: "text" or "series") and its ``classes``."""

    model: SequenceClassifier

    def __init__(
        self,
        path: str | Path,
        which: str,
        model: SequenceClassifier,
        meta: dict,
        config: task.ClassifyConfig | None,
        encoder: task.Encoder,
        classes: Sequence[str],
    ) -> None:
        super().__init__(path, which, model, meta, config)
        self.encoder, self.classes = encoder, tuple(classes)

    def details(self) -> dict:
        return {"classes": list(self.classes), "input": self.encoder.kind}

    # ---- predictions ---------------------------------------------------------------------
    def encode(self, inputs: Sequence, what: str = "input") -> list[Tensor]:
        """Raw texts or (T, C) series as model inputs (a ValueError names a bad one)."""
        return self.encoder(inputs, what)

    def labelled(self, p: Sequence[float]) -> dict:
        """The likeliest class and every class's probability, of probabilities ``p`` (K,)."""
        label = self.classes[max(range(len(p)), key=p.__getitem__)]
        return {"label": label, "probabilities": dict(zip(self.classes, p, strict=True))}

    def probabilities(self, inputs: Sequence) -> Tensor:
        """(N, K) class probabilities of raw texts or series."""
        return task.predict_logits(self.model, self.encode(inputs)).softmax(-1)

    def predict_encoded(self, encoded: Sequence[Tensor]) -> list[dict]:
        """``labelled`` rows of inputs ``encode`` made, all in one batched pass."""
        probs = task.predict_logits(self.model, encoded).softmax(-1)
        return [self.labelled(p) for p in probs.tolist()]

    def predict(self, inputs: Sequence, **options: Any) -> list[dict]:
        """For each raw text or series: the predicted label and every class's probability."""
        _no_options("predict", options)
        return self.predict_encoded(self.encode(inputs))

    # ---- scores ----------------------------------------------------------------------------
    def scores(self, data: Examples) -> dict:
        """Loss, accuracy, macro-F1, confusion matrix and example count on labelled ``data``."""
        targets = task.class_ids(data.labels, self.classes, "evaluation")
        x = self.encode(data.inputs, "evaluation")
        return task.evaluate(self.model, x, targets, len(self.classes)) | {"examples": len(data)}

    def data(self) -> tuple[Examples, Examples, Examples | None]:
        """(train, validation, test or None) examples, read again from the source the
        checkpoint records."""
        return load_source(recorded_source(self.meta, self.path / f"{self.which}.safetensors"))

    def test(self) -> dict:
        return self.evaluate()  # its data source's test set (a fold, --test, a UCR test file)

    def evaluate(
        self,
        data: Examples | str | Path | None = None,
        text_column: str = "text",
        label_column: str = "label",
        max_chars: int = MAX_CHARS,
        **options: Any,
    ) -> dict:
        """``scores`` on ``data``: labelled examples, a CSV/TSV (``text_column``,
        ``label_column``) or .ts file, or (None) the run's test split; ``data`` names what was
        scored, and a series model's result has its ``baselines`` (``task.baselines``)."""
        _no_options("evaluate", options)
        if data is None:
            _, _, scored = self.data()
            if scored is None:
                raise ValueError(
                    "this run's data source has no test set; pass labelled data to score"
                )
            what = "test split"
        elif isinstance(data, Examples):
            scored, what = data, None
        elif str(data).endswith(".ts"):
            scored, what = read_ts(data).examples(), str(data)
        else:
            scored = read_table(data, text_column, label_column, max_chars)
            what = str(data)
        result = self.scores(scored) | ({} if what is None else {"data": what})
        if self.encoder.kind == "series":
            result["baselines"] = self._baselines(scored)
        return result

    def _baselines(self, scored: Examples) -> dict:
        """Majority-class and 1-NN accuracy on ``scored`` from the run's training split (a
        training file that moved since is noted, not an error: the model's scores stand)."""
        try:
            train = self.data()[0]
        except OSError as e:
            return {"unavailable": f"the run's training data cannot be read: {e}"}
        return task.baselines(train, scored)

    def against_baselines(self) -> dict:
        """Accuracy on the test split (else the validation split) beside the majority-class
        and 1-NN Euclidean baselines fitted on the training split."""
        train, valid, test = self.data()
        scored, what = (test, "test split") if test is not None else (valid, "validation split")
        result = self.scores(scored)
        conv = self.model.conv is not None
        return {"accuracy": result["accuracy"], "data": what, "conv": conv} | task.baselines(
            train, scored
        )

    # ---- streams and export ----------------------------------------------------------------
    def open_stream(self, **options: Any) -> ClassifyStream:
        """The class probabilities of the sequence so far, a step or chunk at a time (a
        bidirectional model, or one with the convolutional branch, is refused saying why)."""
        if options:
            raise ValueError(f"options: a classify stream takes none, got {sorted(options)}")
        return ClassifyStream(self)

    def restore_stream(self, data: bytes) -> ClassifyStream:
        return ClassifyStream.from_bytes(self, data)

    def graphs(self, mode: str | None = None) -> Export:
        """The "model-sequence" graph, checked on the first held-out examples too."""
        sequence_only(self.task, "elman.tasks.classify.graphs", mode)
        rows = held_out(lambda: self.data()[::-1], "data")
        real = {}
        if rows:
            x = self.encode(rows.inputs[:REAL_ROWS], "held-out")
            batch = collate(x, range(len(x)))
            real["model-sequence"] = (batch.x, batch.lengths)
        return Export(classifier_graphs(self.model), real)


def sequence_only(name: str, module: str, mode: str | None) -> None:
    """Refuse export ``mode`` "step" for a task whose graphs read whole sequences."""
    if mode is None:
        return
    ox.check_mode(mode)
    if mode == "step":
        raise ValueError(
            f"mode: 'step' is for language and music models; a {name} model exports its own "
            f"graphs (see {module})"
        )


def _no_options(verb: str, options: dict) -> None:
    if options:
        raise ValueError(f"options: a classify model's {verb} takes none, got {sorted(options)}")


def load(out: str | Path, which: str = "best") -> ClassifyRun:
    """The classifier in run directory ``out`` (``which``: "best" or "last" checkpoint)."""
    model, encoder, meta = open_model(out, task.NAME, which, task.model_from)
    info = meta["task_config"]
    config = task.ClassifyConfig(**info["model"])
    return ClassifyRun(out, which, model, meta, config, encoder, info["classes"])


# `elman tune classify`'s default space: sizes a CPU trains in minutes; the text-only fields
# (embedding, word_dropout...) are left out, so the space suits numeric series too.
# Weight decay only with AdamW (decoupled; under Adam it stays 0), min_lr only with cosine.
SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "hidden": dict(type="int", low=64, high=256, step=64),
    "layers": dict(type="int", low=1, high=2),
    "bidirectional": dict(type="categorical", choices=[True, False]),
    "pooling": dict(type="categorical", choices=["max", "mean", "last", "attention"]),
    "dropout": dict(type="float", low=0.0, high=0.5),
    **spaces.REGULARIZERS,
    "batch_size": dict(type="categorical", choices=[16, 32, 64]),
    **spaces.optimizer(3e-4, 1e-2),
}


SPEC = TaskSpec(
    name=task.NAME,
    summary="sequence classifier (text or numeric series)",
    config=task.ClassifyConfig,
    presets=awd_preset(task.ClassifyConfig, training=False),
    load=load,
    resume=task.resume,
    command="elman.tasks.classify.command",
    served="elman.serve.classify:ClassifyModel",
    train_defaults=MappingProxyType(
        {"steps": 1000, "lr": 2e-3, "eval_every": 100, "patience": None}
    ),
    space=SPACE,
    objective="val_accuracy",  # what a classifier is for; val_loss also rewards confidence
)
ClassifyRun.spec = SPEC

__all__ = ["SPEC", "ClassifyRun", "load", "sequence_only"]
