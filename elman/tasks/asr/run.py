"""A trained speech recogniser (``elman train asr``) behind the ``Run`` interface: transcripts of
audio files or samples (greedy, or prefix beam search with a language model fused in), word
timings from the CTC alignment, WER and CER on held-out voices, the posteriorgram as a
picture, streams of audio chunks (unidirectional models) and the ONNX graph."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from elman import ctc
from elman.data.speech.audio import read_audio
from elman.data.speech.features import features, seconds_per_frame
from elman.data.speech.manifests import Utterance, read_manifest
from elman.graphs.graph import Export
from elman.tasks import spaces
from elman.tasks.asr import data as speech
from elman.tasks.asr import task as asr
from elman.tasks.asr.alphabet import BLANK
from elman.tasks.asr.decoding import Decoding
from elman.tasks.asr.graphs import acoustic_graphs, graph_inputs
from elman.tasks.asr.model import AcousticModel
from elman.tasks.asr.scores import error_rates
from elman.tasks.rundir import open_model
from elman.tasks.spec import Run, TaskSpec
from elman.train.evaluation import evaluating


class AsrRun(Run):
    """An acoustic model with its ``config`` (features, alphabet, sizes)."""

    model: AcousticModel
    config: asr.AsrConfig

    @property
    def seconds_per_frame(self) -> float:
        return seconds_per_frame(self.config.feature_config())

    @property
    def streams(self) -> bool:
        return not self.config.bidirectional

    def details(self) -> dict:
        c = self.config
        shape = {
            "cell": c.cell,
            "hidden_size": c.hidden,
            "num_layers": c.layers,
            "bidirectional": c.bidirectional,
        }
        return shape | {
            "symbols": c.symbols,
            "features": c.features,
            "stack": c.stack,
            "rate": c.rate,
            "streams": self.streams,
        }

    # ---- recognition -----------------------------------------------------------------------
    def samples_of(self, audio: str | Path | Tensor) -> Tensor:
        """Samples (T,) of a file path (read at the model's rate) or of given samples."""
        if isinstance(audio, str | Path):
            return read_audio(audio, self.config.rate, self.config.max_seconds)
        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim != 1 or x.numel() == 0:
            raise ValueError(f"audio: expected 1-D samples (T,), got shape {tuple(x.shape)}")
        if x.numel() > self.config.max_seconds * self.config.rate:
            seconds = x.numel() / self.config.rate
            raise ValueError(f"audio: {seconds:.2f} s, over max_seconds={self.config.max_seconds}")
        return x

    def posteriors(self, audio: str | Path | Tensor) -> Tensor:
        """CTC log-probabilities (frames, symbols) of one utterance."""
        f = features(self.samples_of(audio), self.config.feature_config())
        if f.shape[0] == 0:
            raise ValueError("audio: too short to make one feature frame")
        with evaluating(self.model) as to_model:
            log_probs, _ = self.model(to_model(f[None]))
        return log_probs[0].cpu()

    def decode(self, log_probs: Tensor, decoding: Decoding | None = None) -> str:
        """The transcript of (frames, symbols) log-probabilities."""
        return (decoding or Decoding()).text(log_probs, self.config.alphabet)

    def transcribe(
        self,
        inputs: Sequence[str | Path | Tensor],
        decoding: Decoding | None = None,
        timings: bool = False,
    ) -> list[dict]:
        """For each audio file (or samples): its ``text`` and, with ``timings``, its
        ``words`` as (word, start s, end s) along the greedy alignment."""
        rows = []
        for audio in inputs:
            log_probs = self.posteriors(audio)
            row: dict[str, Any] = {"text": self.decode(log_probs, decoding)}
            if timings:
                row["words"] = self.word_timings(log_probs)
            rows.append(row)
        return rows

    def word_timings(self, log_probs: Tensor) -> list[tuple[str, float, float]]:
        symbols = ["", *self.config.symbols]
        found = ctc.word_timings(log_probs, symbols, BLANK, self.seconds_per_frame)
        return [(w, round(a, 3), round(b, 3)) for w, a, b in found]

    # ---- scores ---------------------------------------------------------------------------
    def utterances(self, split: str = "test") -> list[Utterance]:
        """The run's held-out ``split`` ("valid" or "test") as its source records it."""
        if split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        _, valid, test = speech.load_source(self.meta["task_config"]["source"])
        found = valid if split == "valid" else test
        if not found:
            raise ValueError(
                "this run's data source has no test manifest; pass one to score "
                "(`elman evaluate DIR MANIFEST`)"
            )
        return found

    def evaluate(
        self,
        data: str | Path | Sequence[Utterance] | None = None,
        split: str = "test",
        decoding: Decoding | None = None,
    ) -> dict:
        """Corpus WER and CER (``scores.error_rates``) on ``data`` (a manifest, utterances, or
        None: the run's held-out ``split``), with the audio's length and the decode time."""
        if data is None:
            utterances, what = self.utterances(split), f"{split} split"
        elif isinstance(data, str | Path):
            utterances, what = read_manifest(data), str(data)
        else:
            utterances, what = list(data), "given utterances"
        a = self.config.alphabet
        refs = [a.normalise(u.text) for u in utterances]
        for u, r in zip(utterances, refs, strict=True):
            a.encode(r, f"transcript of {u.audio}")
        hyps = [row["text"] for row in self.transcribe([u.audio for u in utterances], decoding)]
        return error_rates(refs, hyps) | {
            "data": what,
            "decoding": (decoding or Decoding()).describe(),
        }

    def test(self) -> dict:
        return self.evaluate(split="test")

    # ---- streams and export ---------------------------------------------------------------
    def open_stream(self, **options: Any):
        """Audio in chunks (samples at the model's rate) -> the partial transcript so far."""
        from elman.tasks.asr.stream import AsrStream

        self._streamable()
        return AsrStream(self, **options)

    def restore_stream(self, data: bytes):
        from elman.tasks.asr.stream import AsrStream

        self._streamable()
        return AsrStream.from_bytes(self, data)

    def _streamable(self) -> None:
        if not self.streams:
            raise ValueError(
                "a bidirectional speech model reads the whole utterance; train one with "
                "--no-bidirectional to stream"
            )

    def graphs(self, mode: str | None = None) -> Export:
        """The acoustic model's graph (``graphs.acoustic_graphs``), checked on the frames of
        the first validation utterance."""
        mode = mode or "sequence"
        found = acoustic_graphs(self.model, self.config.feature_config().dim, mode)
        samples = self.samples_of(self.utterances("valid")[0].audio)
        x = features(samples, self.config.feature_config())[None]
        x = x[:, :1] if mode == "step" else x
        return Export(found, {found[0].name: graph_inputs(self.model, x)}, mode=mode)

    def instead(self, verb: str) -> str:
        return "use `elman transcribe DIR AUDIO` or `elman evaluate DIR [MANIFEST]`"


def load(out: str | Path, which: str = "best") -> AsrRun:
    """The speech recogniser in run directory ``out`` (checkpoint ``which``)."""
    model, config, meta = open_model(out, asr.NAME, which, asr.model_from)
    return AsrRun(out, which, model, meta, config)


# `elman tune asr`'s default space: sizes a CPU trains in an hour; features stay fixed.
SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "hidden": dict(type="int", low=128, high=384, step=64),
    "layers": dict(type="int", low=2, high=4),
    "dropout": dict(type="float", low=0.0, high=0.3),
    "stack": dict(type="int", low=2, high=4),
    "batch_size": dict(type="categorical", choices=[8, 16, 32]),
    **spaces.optimizer(3e-4, 3e-3),
}

SPEC = TaskSpec(
    name=asr.NAME,
    summary="speech recognition with CTC (audio in, text out)",
    config=asr.AsrConfig,
    load=load,
    resume=asr.resume,
    command="elman.tasks.asr.command",
    served="elman.serve.asr:AsrModel",
    train_defaults={
        "steps": 3000,
        "lr": 1e-3,
        "eval_every": 250,
        "clip_norm": 5.0,
        "monitor": "val_cer",
    },
    space=SPACE,
    objective="val_cer",
)
AsrRun.spec = SPEC

__all__ = ["SPEC", "AsrRun", "load"]
