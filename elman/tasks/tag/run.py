"""A trained tagger as a ``Run``: tags of sentences, token and unseen-word accuracy on tagged
data, and its ONNX graph checked on the run's own held-out sentences. It never streams: its
recurrent layer reads every sentence in both directions.

A tagger with contextual string embeddings is self-contained: its checkpoint holds the two
character LMs' weights (``model.strings.forward_lm.*``, ``model.strings.backward_lm.*``) and its
header their configs, vocabularies and sources (``task_config.strings``), so it needs the LM
runs no more; loading checks the weights against the sha256 the sources record."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from elman.data.brown import Sentence
from elman.graphs import onnx as ox
from elman.graphs.graph import REAL_ROWS, Export, held_out
from elman.tasks import spaces
from elman.tasks.awd import awd_preset
from elman.tasks.rundir import open_model, recorded_source
from elman.tasks.spec import Run, TaskSpec
from elman.tasks.tag import task
from elman.tasks.tag.graphs import tagger_graphs
from elman.tasks.tag.lms import check_weights
from elman.tasks.tag.model import Tagger

SPLITS = ("valid", "test")


class TagRun(Run):
    """A trained tagger: its ``model`` (a ``Tagger``, with its character LMs in
    ``model.strings`` if it reads contextual string embeddings) and ``vocab`` (words,
    characters and tags, ``task.Vocabularies``)."""

    model: Tagger
    streams_why = (
        "its recurrent layer is always bidirectional, so every tag depends on the words after "
        "it (and a CRF's best path on the whole sentence); tag whole sentences with the run's "
        "predict (`elman predict`)"
    )

    def __init__(
        self,
        path: str | Path,
        which: str,
        model: Tagger,
        meta: dict,
        config: task.TagConfig,
        vocab: task.Vocabularies,
    ) -> None:
        super().__init__(path, which, model, meta, config)
        self.vocab = vocab

    def details(self) -> dict:
        strings = self.model.strings
        if strings is None:
            return {"tags": list(self.vocab.tags)}
        return {"tags": list(self.vocab.tags), "strings": list(strings.sources)}

    def tag(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """Tags of tokenized ``sentences`` (lists of words), all in batched passes."""
        return task.tag(self.model, self.vocab, sentences)

    def predict(self, inputs: Sequence[str | Sequence[str]], **options: Any) -> list[dict]:
        """``{"words", "tags"}`` of each sentence: a text (split on whitespace) or its words."""
        if options:
            raise ValueError(f"options: a tag model's predict takes none, got {sorted(options)}")
        sentences = [t.split() if isinstance(t, str) else list(t) for t in inputs]
        tags = self.tag(sentences)
        return [{"words": s, "tags": t} for s, t in zip(sentences, tags, strict=True)]

    def splits(self) -> tuple[list[Sentence], list[Sentence], list[Sentence]]:
        """(train, valid, test) sentences, read again from the source the checkpoint records."""
        path = self.path / f"{self.which}.safetensors"
        return task.load_source(recorded_source(self.meta, path))

    def test(self) -> dict:
        return self.evaluate(split="test")

    def evaluate(
        self,
        data: str | Path | Sequence[Sentence] | None = None,
        split: str = "test",
        **options: Any,
    ) -> dict:
        """Token and unseen-word accuracy on ``data``: a ``word<TAB>tag`` file, tagged
        sentences, or (None) the run's ``split`` ("valid" or "test"); ``data`` names what was
        scored. Tags training never had count as mistakes."""
        if options:
            raise ValueError(f"options: a tag model's evaluate takes none, got {sorted(options)}")
        if data is None:
            if split not in SPLITS:
                raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
            sentences = self.splits()[SPLITS.index(split) + 1]
            if not sentences:
                raise ValueError(
                    f"this run's data has no {split} split; pass a tagged file to score"
                )
            what, name = f"{split} split", split
        elif isinstance(data, str | Path):
            sentences = task.read_conll(data)
            task.check_tags(sentences, self.vocab.tags, data)
            what, name = str(data), "evaluation"
        else:
            sentences, what, name = list(data), None, "evaluation"
        encoded = task.encode_sentences(self.vocab, sentences, name, strings=self.model.strings)
        return task.accuracy(self.model, encoded) | ({} if what is None else {"data": what})

    def open_stream(self, **options: Any) -> Any:
        raise ValueError(f"model: a tagger cannot stream: {self.streams_why}")

    def restore_stream(self, data: bytes) -> Any:
        raise ValueError(f"model: a tagger cannot stream: {self.streams_why}")

    def graphs(self, mode: str | None = None) -> Export:
        """The "model-sequence" graph, checked on the first held-out sentences too."""
        if mode is not None:
            ox.check_mode(mode)
            if mode == "step":
                raise ValueError(
                    "mode: 'step' is for language and music models; a tag model exports its "
                    "own graphs (see elman.tasks.tag.graphs)"
                )
        rows = held_out(lambda: self.splits()[::-1], "data")
        real = {}
        if rows:
            sentences = [[w for w, _ in s] for s in rows[:REAL_ROWS]]
            batch = task.collate([self.vocab.encode(s) for s in sentences], range(len(sentences)))
            inputs = (batch.words, batch.chars, batch.lengths)
            if self.model.strings is not None:
                b = self.model.strings.encode(sentences)
                inputs += (b.forward, b.backward, b.forward_at, b.backward_at)
            real["model-sequence"] = inputs
        return Export(tagger_graphs(self.model), real)


def load(out: str | Path, which: str = "best") -> TagRun:
    """The tagger in run directory ``out`` (``which``: "best" or "last" checkpoint)."""
    model, vocab, meta = open_model(out, task.NAME, which, task.model_from)
    if model.strings is not None:
        check_weights(model.strings, Path(out) / f"{which}.safetensors")
    config = task.TagConfig(**meta["task_config"]["model"])
    return TagRun(out, which, model, meta, config, vocab)


# `elman tune tag`'s default space: sizes a CPU trains in minutes; the character embedding
# only matters when the character CNN is on (char_filters > 0).
# Weight decay only with AdamW (decoupled; under Adam it stays 0), min_lr only with cosine.
SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "hidden": dict(type="int", low=64, high=256, step=64),
    "layers": dict(type="int", low=1, high=2),
    "word_embedding": dict(type="int", low=50, high=200, step=50),
    "char_filters": dict(type="categorical", choices=[0, 25, 50]),
    "char_embedding": dict(type="int", low=16, high=32, step=8, when={"char_filters": [25, 50]}),
    "dropout": dict(type="float", low=0.0, high=0.6),
    **spaces.REGULARIZERS,
    "crf": dict(type="categorical", choices=[True, False]),
    "batch_size": dict(type="categorical", choices=[16, 32, 64]),
    **spaces.optimizer(3e-4, 1e-2),
}


SPEC = TaskSpec(
    name=task.NAME,
    summary="sequence tagger (e.g. part of speech)",
    config=task.TagConfig,
    presets=awd_preset(task.TagConfig, training=False),
    load=load,
    resume=task.resume,
    command="elman.tasks.tag.command",
    served="elman.serve.tag:TagModel",
    train_defaults=MappingProxyType(
        {"steps": 6000, "lr": 2e-3, "eval_every": 500, "clip_norm": 5.0}
    ),
    space=SPACE,
    objective="val_accuracy",  # token accuracy, the measure taggers are compared by
)
TagRun.spec = SPEC

__all__ = ["SPEC", "TagRun", "load"]
