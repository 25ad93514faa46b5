"""Speech recognition with CTC (Graves et al. 2006; 2013): log-mel frames, stacked k at a time
to shorten the sequence, through a (bi)directional recurrent encoder to a softmax over the
blank and the characters; trained with the CTC loss

    L = -log p(y | x) = -log Σ_{π ∈ B⁻¹(y)} Π_t p(π_t | x)      B: merge repeats, drop blanks

reported per reference character (``val_loss``), beside the greedy decode's character and
word error rates (``val_cer``, ``val_wer``) on held-out voices. Training adds SpecAugment's
masks (Park et al. 2019) to every utterance, drawn anew each epoch from the run's seed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.ctc import greedy_batch
from elman.data.batching import bucket_batches, pad
from elman.data.speech.augment import SpecAugment, spec_augment
from elman.data.speech.features import KINDS as FEATURE_KINDS
from elman.data.speech.features import FeatureConfig, stack_frames
from elman.fields import option
from elman.nn import CELLS
from elman.nn.checks import check_fields
from elman.tasks.asr import data as speech
from elman.tasks.asr.alphabet import BLANK, Alphabet
from elman.tasks.asr.model import AcousticModel
from elman.tasks.asr.scores import error_rates
from elman.tasks.finetune import check_same, source_run
from elman.tasks.rundir import fit_task, resume_run
from elman.train import TrainConfig, seed_everything
from elman.train.distributed import rank_and_world
from elman.train.evaluation import evaluating

NAME = "asr"
EVAL_BATCH = 32
# the fields that fix an acoustic model's weights and what its inputs and outputs mean
SHAPE = ("cell", "hidden", "layers", "bidirectional", "features", "n_mels", "n_mfcc", "stack",
         "rate", "symbols")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class AsrConfig:
    """The acoustic model, its features and how utterances are fed to it. Every field with
    help is also an option of `elman train asr` (``elman.fields``); the defaults are the
    recommended offline model (``--no-bidirectional`` for one that streams)."""

    cell: str = option("lstm", f"recurrent cell: {', '.join(CELLS)}", choices=CELLS)
    hidden: int = option(256, "hidden units per layer and direction")
    layers: int = option(3, "stacked recurrent layers")
    bidirectional: bool = option(True, "read the whole utterance both ways (no streaming)")
    dropout: float = option(0.1, "dropout between layers and before the output, in [0, 1)")
    features: str = option("fbank", "log-mel filterbank or MFCC", choices=FEATURE_KINDS)
    n_mels: int = option(80, "mel bands")
    n_mfcc: int = option(13, "cepstral coefficients (features=mfcc)")
    stack: int = option(3, "frames stacked into one (10 ms each): shorter sequences")
    rate: int = option(16000, "sample rate the audio is read at, Hz")
    max_seconds: float = option(30.0, "longest utterance accepted, seconds")
    batch_size: int = option(16, "utterances per batch")
    spec_augment: SpecAugment = field(default_factory=SpecAugment)
    augment: bool = option(True, "SpecAugment masks on training utterances")
    symbols: str = Alphabet().symbols

    def __post_init__(self) -> None:
        check_fields(
            self,
            {"cell": CELLS, "features": FEATURE_KINDS},
            ("hidden", "layers", "n_mels", "n_mfcc", "stack", "rate", "batch_size"),
            rates=("dropout",),
            flags=("bidirectional", "augment"),
        )
        ok = isinstance(self.max_seconds, int | float) and not isinstance(self.max_seconds, bool)
        if not (ok and self.max_seconds > 0):
            raise ValueError(f"max_seconds must be a number > 0, got {self.max_seconds!r}")
        if isinstance(self.spec_augment, dict):  # read back from a checkpoint's JSON
            object.__setattr__(self, "spec_augment", SpecAugment(**self.spec_augment))
        self.feature_config()  # its own checks: n_mfcc <= n_mels...
        Alphabet(self.symbols)

    def feature_config(self) -> FeatureConfig:
        """Left-aligned frames (``streaming``), so a stream's frames equal the whole
        utterance's; no normalisation here: the model scales by training statistics."""
        return FeatureConfig(
            rate=self.rate,
            kind=self.features,
            n_mels=self.n_mels,
            n_mfcc=self.n_mfcc,
            stack=self.stack,
            streaming=True,
            normalise="none",
        )

    @property
    def alphabet(self) -> Alphabet:
        return Alphabet(self.symbols)


def build_model(config: AsrConfig) -> AcousticModel:
    return AcousticModel(
        config.feature_config().dim,
        len(config.alphabet),
        config.cell,
        config.hidden,
        config.layers,
        config.bidirectional,
        config.dropout,
    )


class Batch(NamedTuple):
    x: Tensor  # (B, T, F) stacked frames
    lengths: Tensor  # (B,) frames
    targets: Tensor  # (Σ symbols,) concatenated, what ctc_loss reads
    target_lengths: Tensor  # (B,)


def scale_stats(feats: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """μ, σ per feature over every training frame (unstacked: each of the k stacked slots
    shares its frame's statistics)."""
    frames = torch.cat(list(feats)).double()
    mean, std = frames.mean(0), frames.std(0, correction=0).clamp_min(1e-5)
    return mean.float(), std.float()


def masked(f: Tensor, mean: Tensor, std: Tensor, config: SpecAugment, g: torch.Generator) -> Tensor:
    """SpecAugment in the model's scaled space (a mask's value 0 is the training mean), the
    result returned in raw units."""
    z = spec_augment((f - mean) / std, config, g)
    return z * std + mean


def make_batch(feats: Sequence[Tensor], labels: Sequence[Tensor], stack: int) -> Batch:
    x, lengths = pad([stack_frames(f, stack) for f in feats])
    targets = torch.cat(list(labels))
    return Batch(x, lengths, targets, torch.tensor([len(y) for y in labels]))


def ctc_terms(model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
    """Summed CTC loss (nats) of the batch and its log-probabilities (B, T, V)."""
    log_probs, _ = model(batch.x, batch.lengths)
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),
        batch.targets,
        batch.lengths,
        batch.target_lengths,
        blank=BLANK,
        reduction="sum",
        zero_infinity=True,
    )
    return loss, log_probs


class AsrTask:
    """The trainer's view of speech recognition (see ``elman.train.Task``)."""

    name = NAME

    def __init__(
        self,
        train: speech.Encoded,
        valid: speech.Encoded,
        config: AsrConfig,
        seed: int = 0,
        source: dict | None = None,
    ) -> None:
        self.config, self.seed, self.source = config, seed, source or {}
        keep = speech.trainable(train, config.stack)
        self.dropped = len(train) - len(keep)  # too few frames for their transcripts
        if not keep:
            raise ValueError(
                f"no training utterance has enough frames for its transcript at stack "
                f"{config.stack} ({config.stack * 10} ms per frame); lower --stack"
            )
        self.train_data, self.valid_data = train.subset(keep), valid
        self.model = build_model(config)
        self.raw_mean, self.raw_std = scale_stats(self.train_data.feats)
        self.model.scale_mean.copy_(self.raw_mean.repeat(config.stack))
        self.model.scale_std.copy_(self.raw_std.repeat(config.stack))
        self.init_from: dict | None = None  # the run it started from, if any

    def start_from(self, run) -> None:
        """Every weight of the asr ``run`` (same ``SHAPE``), its feature scaling included:
        its weights were trained on inputs scaled by its training set's statistics."""
        self.model.load_state_dict(run.model.state_dict())
        n = self.raw_mean.numel()
        self.raw_mean = self.model.scale_mean[:n].clone()
        self.raw_std = self.model.scale_std[:n].clone()
        self.init_from = {
            "path": str(run.path.resolve()),
            "checkpoint": run.which,
            "step": run.meta.get("step"),
        }

    def batches(self, epoch: int) -> list[Batch]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        rank, world = rank_and_world()
        lengths = [f.shape[0] for f in self.train_data.feats]
        out = []
        for b in bucket_batches(lengths, self.config.batch_size, g):
            if len(b) < world:
                continue
            feats = [self.train_data.feats[i] for i in b[rank::world]]
            if self.config.augment:
                sa = self.config.spec_augment
                feats = [masked(f, self.raw_mean, self.raw_std, sa, g) for f in feats]
            labels = [self.train_data.labels[i] for i in b[rank::world]]
            out.append(make_batch(feats, labels, self.config.stack))
        return out

    def loss(self, model: nn.Module, batch: Batch, carry):
        total, _ = ctc_terms(model, batch)
        symbols = int(batch.target_lengths.sum())
        return total / symbols, symbols, None

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        loss, texts = decode_encoded(model, self.valid_data, self.config)
        rates = error_rates(self.valid_data.texts, texts)
        return {"val_loss": loss, "val_cer": rates["cer"], "val_wer": rates["wer"]}

    def describe(self) -> dict:
        return {
            "model": asdict(self.config),
            "vocab": {"symbols": self.config.symbols},
            "source": self.source,
            "seed": self.seed,
            "dropped": self.dropped,
            "init_from": self.init_from,
        }


def decode_encoded(
    model: nn.Module, data: speech.Encoded, config: AsrConfig
) -> tuple[float, list[str]]:
    """CTC nats per reference symbol and the greedy transcripts of ``data``, in its order."""
    alphabet, total, count = config.alphabet, 0.0, 0
    texts: list[str] = [""] * len(data)
    lengths = [f.shape[0] for f in data.feats]
    with evaluating(model) as to_model:
        for index in bucket_batches(lengths, EVAL_BATCH, shuffle=False):
            batch = make_batch(
                [data.feats[i] for i in index], [data.labels[i] for i in index], config.stack
            )
            loss, log_probs = ctc_terms(model, to_model(batch))
            total, count = total + float(loss), count + int(batch.target_lengths.sum())
            paths = greedy_batch(log_probs.cpu(), batch.lengths, BLANK)
            for i, ids in zip(index, paths, strict=True):
                texts[i] = alphabet.decode(ids)
    return total / max(count, 1), texts


# ---- runs ------------------------------------------------------------------------------
def make_task(source: dict, config: AsrConfig, seed: int) -> AsrTask:
    """The task on ``source``'s training and validation utterances (the test split is only
    read when a run is scored)."""
    train, valid, _ = speech.load_source(source)
    fc, a, limit = config.feature_config(), config.alphabet, config.max_seconds
    task = AsrTask(
        speech.encode(train, fc, a, limit, "training"),
        speech.encode(valid, fc, a, limit, "validation"),
        config,
        seed,
        source,
    )
    if task.dropped:  # the run still trains: say what it left out, and why
        print(
            f"elman: {task.dropped} of {len(train)} training utterances are too short for "
            f"their transcripts at --stack {config.stack} ({config.stack * 10} ms per frame) "
            "and are left out",
            file=sys.stderr,
        )
    return task


def train(
    source: dict,
    config: AsrConfig,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    epochs: int | None = None,
    init_from: str | Path | None = None,
) -> dict[str, float]:
    """Train an acoustic model on the utterances ``source`` describes into ``out``;
    ``init_from``: an asr run to start from (``config`` must give its model, ``SHAPE``): to
    fine-tune it on other speech, or to train it on."""
    seed_everything(train_config.seed)
    run = source_run(init_from, NAME) if init_from is not None else None
    if run is not None:  # before the audio is read: a mismatch is refused at once
        check_same(config, run, SHAPE, "the source model's")
    task = make_task(source, config, train_config.seed)
    if run is not None:
        task.start_from(run)
    return fit_task(task, train_config, out, until, epochs)


def config_of(info: dict) -> AsrConfig:
    return AsrConfig(**info["model"])


def _task_from_meta(meta: dict) -> AsrTask:
    info = meta["task_config"]
    task = make_task(info["source"], config_of(info), info["seed"])
    task.init_from = info.get("init_from")  # the checkpoint holds the weights it led to
    return task


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


def model_from(info: dict) -> tuple[AcousticModel, AsrConfig]:
    """The (untrained) model a run's ``task_config`` describes, and its config."""
    config = config_of(info)
    return build_model(config), config
