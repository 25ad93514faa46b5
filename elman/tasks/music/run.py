"""A trained music run (``elman train music``) behind the ``Run`` interface: held-out NLL,
sampling from a primer into MIDI, next-step streams and the ONNX graphs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from elman.graphs.graph import Export
from elman.tasks import spaces
from elman.tasks.lm.graphs import language_graphs, model_inputs
from elman.tasks.lm.stream import Stream
from elman.tasks.music import sampling
from elman.tasks.music import task as music
from elman.tasks.rundir import open_model
from elman.tasks.spec import Run, TaskSpec

PRIMER_STEPS = 8  # steps of the primer piece generation starts from, unless told


class MusicRun(Run):
    """A music model with its ``encoding`` (pitch range of a piano-roll model, or the note
    tokens of a melody model) and the time ``grid`` it was trained on, in quarter notes."""

    def __init__(
        self,
        path: str | Path,
        which: str,
        model: music.MusicModel,
        meta: dict,
        encoding: music.Encoding,
    ) -> None:
        config = music.MusicConfig(**meta["task_config"]["model"])
        super().__init__(path, which, model, meta, config)
        self.encoding = encoding

    @property
    def frames(self) -> bool:
        """Whether the model reads piano-roll frames (chorales), not note tokens (melody)."""
        return not self.encoding.tokens

    @property
    def grid(self) -> float:
        return float(self.config.step)

    def details(self) -> dict:
        e = self.encoding
        kind = {"pitches": [e.low, e.high]} if self.frames else {"tokens": len(e.tokens)}
        return {"grid_quarters": self.grid, **kind}

    # ---- scores ---------------------------------------------------------------------------
    def test(self) -> dict:
        return self.evaluate(split="test")

    def evaluate(self, data: Sequence | None = None, split: str = "test") -> dict:
        """NLL per time step (chorales) or per note (melody) on the run's held-out ``split``
        ("valid" or "test"), or on ``data``: pieces as ``task.load_named`` reads them (rolls
        (T, 88) on the piano's range, or melodies' event lists)."""
        if data is None:
            items, what = music.held_out(self.meta, split), f"{split} split"
        else:
            items, what = [music.encode(self.encoding, p) for p in data], "given pieces"
        collate = music.frames_batch if self.frames else music.tokens_batch
        key = "nll_per_step" if self.frames else "nll_per_note"
        return {key: music.mean_nll(self.model, items, collate), "pieces": len(items), "data": what}

    # ---- generation -----------------------------------------------------------------------
    def primer(
        self, piece: int = 0, steps: int = PRIMER_STEPS, midi: str | Path | None = None
    ) -> Tensor:
        """The first ``steps`` steps of held-out test piece ``piece``, or of a MIDI file
        (piano-roll models only)."""
        return sampling.primer_from(self.meta, piece, steps, midi)

    def generate(
        self, primer: Tensor, length: int, temperature: float = 1.0, seed: int | None = None
    ) -> Tensor:
        """The primer followed by ``length`` sampled steps (see ``sampling.generate``)."""
        return sampling.generate(self.model, self.encoding, primer, length, temperature, seed)

    def write_midi(self, piece: Tensor, path: str | Path) -> Path:
        """A generated piece (frames or token ids) as a MIDI file on the run's grid."""
        return sampling.write_midi(piece, self.encoding, self.grid, path)

    # ---- streams and export ---------------------------------------------------------------
    def open_stream(self, **options: Any) -> Stream:
        """A next-step stream: (T,) token ids or (T, P) frames in, (T, V) log-probabilities
        of the next step out (per-pitch log-sigmoids for piano rolls)."""
        if options:
            raise ValueError(f"options: a language stream takes none, got {sorted(options)}")
        return Stream(self.model, sigmoid=self.frames)

    def restore_stream(self, data: bytes) -> Stream:
        return Stream.from_bytes(self.model, data, sigmoid=self.frames)

    def graphs(self, mode: str | None = None) -> Export:
        """(x, h0[, c0]) -> (y, hn[, cn]) over whole sequences, or one step (``mode``
        "step"), checked on the first 32 steps (or the first) of held-out test piece 0."""
        mode = mode or "sequence"
        found = language_graphs(self.model, self.encoding.outputs, self.frames, mode)
        x = sampling.primer_from(self.meta, 0, 32)[None]
        x = x[:, :1] if mode == "step" else x
        return Export(found, {found[0].name: model_inputs(self.model, x)}, mode=mode)

    def instead(self, verb: str) -> str:
        return "use `elman generate DIR` (MIDI) or `elman evaluate DIR`"


def load(out: str | Path, which: str = "best") -> MusicRun:
    """The music run in directory ``out`` (checkpoint ``which``: best or last)."""
    model, encoding, meta = open_model(out, music.NAME, which, music.model_from)
    return MusicRun(out, which, model, meta, encoding)


# `elman tune music`'s default space: sizes a CPU trains in minutes; the data options (step,
# transpose, keys, augment) stay fixed, since they change what val_loss measures.
# Weight decay only with AdamW (decoupled; under Adam it stays 0), min_lr only with cosine.
SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "hidden": dict(type="int", low=128, high=512, step=128),
    "layers": dict(type="int", low=1, high=3),
    "dropout": dict(type="float", low=0.0, high=0.5),
    "batch_size": dict(type="categorical", choices=[8, 16, 32]),
    **spaces.optimizer(3e-4, 1e-2),
}


SPEC = TaskSpec(
    name=music.NAME,
    summary="polyphonic (Bach chorales) or melody model",
    config=music.MusicConfig,
    load=load,
    resume=music.resume,
    command="elman.tasks.music.command",
    served="elman.serve.music:MusicModel",
    train_defaults={"steps": 3000, "lr": 2e-3, "eval_every": 200, "clip_norm": 5.0},
    space=SPACE,
    objective="val_loss",  # nats per piece step, the only validation figure training reports
)
MusicRun.spec = SPEC

__all__ = ["SPEC", "MusicRun", "load"]
