"""Music generation (``pip install elman[music]``).

- ``chorales``: polyphonic piano rolls of music21's 371 Bach chorales; at each step a
  sigmoid per pitch gives p(pitch sounds at t+1 | the past), the model of Boulanger-
  Lewandowski et al. 2012's RNN baseline. Metric: negative log-likelihood per time step,
  -Σ_t Σ_p log p(v_{t,p}) / (number of steps) in nats, the JSB Chorales convention.
- ``melody``: monophonic folk tunes of music21's Essen (or O'Neill) collection, one token
  per note or rest ("60/1" = middle C for a quarter note); a softmax over the tokens.
  Metric: nats per note.

Both read the piece from its first step: the input at step t is frame (token) t - 1, a zero
frame (the ``<s>`` token) before the first, and a tune ends with ``<s>`` again. Pieces are
split seeded by piece, 62/19/19% (JSB: 229/76/77). Generation samples from a primer (the
first steps of a held-out piece) and writes MIDI.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.data import music
from elman.data.batching import bucket_batches, pad
from elman.fields import option
from elman.nn import CELLS, build_recurrent
from elman.nn.checks import check_fields
from elman.tasks.rundir import fit_task, resume_run, split_task_from_meta
from elman.train import TrainConfig, seed_everything
from elman.train.distributed import rank_and_world
from elman.train.evaluation import evaluating

NAME = "music"
KINDS = ("chorales", "melody")
START = "<s>"  # melody: the token before the first note and after the last
EVAL_BATCH = 64


@dataclass(frozen=True, kw_only=True)
class MusicConfig:
    """The model and its data. Every field with help is also an option of `elman train music`
    (``elman.fields``); the defaults are the recommended model. ``kind`` is "chorales" (piano
    rolls) or "melody" (note tokens): the command line sets it from --chorales/--melodies."""

    kind: str = "chorales"
    cell: str = option("lstm", "recurrent cell", choices=CELLS)
    hidden: int = option(256, "units per layer")
    layers: int = option(1, "stacked recurrent layers")
    dropout: float = option(0.2, "dropout between layers and before the output layer")
    embedding: int = option(64, "melody: note-token embedding size")
    batch_size: int = option(16, "pieces per batch")
    step: float = option(
        1.0, "chorales: the grid in quarter notes (1 = quarter notes, as JSB; 0.5 = eighths)"
    )
    transpose: str = option(
        "c", "chorales: c moves each chorale to C major / C minor; none keeps its key"
    )
    # per epoch; with keys "used" the modelled pitch range widens by augment on each side
    augment: int = option(0, "chorales: transpose each training piece by a random -k..k semitones")
    keys: str = option(
        "used", "chorales: used (the training pieces' pitch range) or piano (all 88 keys)"
    )

    def __post_init__(self) -> None:
        check_fields(
            self,
            {"kind": KINDS, "cell": CELLS, "transpose": ("c", "none"), "keys": ("used", "piano")},
            ("hidden", "layers", "embedding", "batch_size"),
            rates=("dropout",),
        )
        music.check_step(self.step)
        if (
            isinstance(self.augment, bool)
            or not isinstance(self.augment, int)
            or not 0 <= self.augment <= 12
        ):
            raise ValueError(f"augment must be an integer in 0..12, got {self.augment!r}")


class Batch(NamedTuple):
    inputs: Tensor  # (B, T, P) frames or (B, T) ids
    targets: Tensor  # (B, T, P) or (B, T)
    lengths: Tensor  # (B,)


class MusicModel(nn.Module):
    """Frames (or token ids) -> recurrent layers -> a logit per pitch (or per token)."""

    def __init__(self, config: MusicConfig, outputs: int) -> None:
        super().__init__()
        melody = config.kind == "melody"
        self.embed = nn.Embedding(outputs, config.embedding) if melody else None
        size = config.embedding if melody else outputs
        dropout = config.dropout if config.layers > 1 else 0.0
        self.rnn = build_recurrent(config.cell, size, config.hidden, config.layers, dropout)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, outputs)

    def forward(self, x: Tensor, lengths: Tensor | None = None, state=None):
        """Logits (B, T, outputs) and the final state."""
        e = x if self.embed is None else self.embed(x)
        h, state = self.rnn(e, state, lengths=lengths)
        return self.head(self.drop(h)), state


def nll_terms(model: MusicModel, batch: Batch) -> tuple[Tensor, Tensor]:
    """Total nats over the real steps of a batch and their count, both tensors on the
    batch's device (so a GPU step never waits on the CPU)."""
    logits, _ = model(batch.inputs, batch.lengths)
    steps = real_steps(batch.lengths, logits.shape[1])
    if batch.targets.dim() == 3:  # piano rolls: an independent Bernoulli per pitch
        per = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none").sum(-1)
    else:
        per = F.cross_entropy(logits.transpose(1, 2), batch.targets, reduction="none")
    return (per * steps).sum(), steps.sum()


def nll_sum(model: MusicModel, batch: Batch) -> tuple[Tensor, int]:
    """Total nats over the real steps of a batch, and their count."""
    total, steps = nll_terms(model, batch)
    return total, int(steps)


def real_steps(lengths: Tensor, steps: int) -> Tensor:
    """(B, T) True at each step before a row's length, on ``lengths``' device."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def frames_batch(rolls: Sequence[Tensor]) -> Batch:
    """Inputs: a zero frame, then each roll but its last frame; targets: the rolls."""
    targets, lengths = pad(list(rolls))
    inputs = torch.cat([torch.zeros_like(targets[:, :1]), targets[:, :-1]], dim=1)
    return Batch(inputs, targets, lengths)


def tokens_batch(tunes: Sequence[Tensor]) -> Batch:
    """Inputs: <s> then the tune; targets: the tune then <s> (id 0)."""
    seqs = [torch.cat([torch.zeros(1, dtype=torch.int64), t]) for t in tunes]
    inputs, lengths = pad(seqs)
    targets, _ = pad([torch.cat([t, torch.zeros(1, dtype=torch.int64)]) for t in tunes])
    return Batch(inputs, targets, lengths)


@dataclass(frozen=True)
class Encoding:
    """How pieces become tensors: the pitch range (chorales) or the token list (melody)."""

    low: int = music.PIANO_LOW
    high: int = music.PIANO_HIGH
    tokens: tuple[str, ...] = ()

    @property
    def outputs(self) -> int:
        return len(self.tokens) if self.tokens else self.high - self.low + 1

    def to_json(self) -> dict:
        return {"low": self.low, "high": self.high, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict) -> Encoding:
        return cls(data["low"], data["high"], tuple(data["tokens"]))


# ---- data ------------------------------------------------------------------------------
def load_named(source: dict) -> tuple[list[str], list]:
    """Every piece's name and its content: rolls (T, 88) on the piano's range for chorales
    (moved to C if ``source["transpose"] == "c"``), event lists for melodies."""
    kind, limit = source.get("kind"), source.get("limit")
    if kind == "chorales":
        pieces = music.load_chorales(source.get("step", 1.0), source.get("cache"), limit)
        shift = source.get("transpose") == "c"
        items = [music.transpose_roll(p.roll, p.shift) if shift else p.roll for p in pieces]
        return [p.name for p in pieces], items
    if kind == "melody":
        tunes = music.load_melodies(
            source.get("collection", "essenFolksong"), source.get("match"), 0.25, limit
        )
        return [t.name for t in tunes], [t.events for t in tunes]
    raise ValueError(f"music data source kind must be one of {', '.join(KINDS)}, got {kind!r}")


def split_of(source: dict, count: int) -> tuple[list[int], list[int], list[int]]:
    if count < 3:
        raise ValueError(f"the source holds {count} piece(s); a split needs at least 3")
    return music.split_pieces(count, source.get("seed", 0))


def load_source(source: dict) -> tuple[list, list, list]:
    """(train, valid, test) pieces of ``source``, split by piece (``split_of``)."""
    _, items = load_named(source)
    return tuple([items[i] for i in part] for part in split_of(source, len(items)))  # type: ignore[return-value]


def write_split(path: Path, names: Sequence[str], parts: Sequence[Sequence[int]]) -> None:
    """The names of the pieces in each split, as JSON (a run's ``split.json``)."""
    doc = {
        k: [names[i] for i in part]
        for k, part in zip(("train", "valid", "test"), parts, strict=True)
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


def fit_encoding(config: MusicConfig, train: Sequence) -> Encoding:
    if config.kind == "melody":
        counts: dict[str, int] = {}
        for tune in train:
            for event in tune:
                token = music.event_token(event)
                counts[token] = counts.get(token, 0) + 1
        return Encoding(tokens=(START, "<unk>", *sorted(counts, key=lambda t: (-counts[t], t))))
    if config.keys == "piano":
        return Encoding()
    used = torch.cat(list(train)).amax(0).nonzero().flatten()
    low = max(music.PIANO_LOW, music.PIANO_LOW + int(used.min()) - config.augment)
    high = min(music.PIANO_HIGH, music.PIANO_LOW + int(used.max()) + config.augment)
    return Encoding(low, high)


def encode(encoding: Encoding, piece) -> Tensor:
    """A piece as the model reads it: roll columns low..high, or token ids (unknown: 1)."""
    if encoding.tokens:
        ids = {t: i for i, t in enumerate(encoding.tokens)}
        return torch.tensor([ids.get(music.event_token(e), 1) for e in piece], dtype=torch.int64)
    a = encoding.low - music.PIANO_LOW
    return piece[:, a : a + encoding.outputs]


class MusicTask:
    """The trainer's view of music modeling (see ``elman.train.Task``)."""

    name = NAME

    def __init__(
        self,
        train: Sequence,
        valid: Sequence,
        config: MusicConfig,
        seed: int = 0,
        encoding: Encoding | None = None,
        source: dict | None = None,
    ) -> None:
        self.config, self.seed, self.source = config, seed, source or {}
        self.encoding = encoding or fit_encoding(config, train)
        self.train_items = [encode(self.encoding, p) for p in train]
        self.valid_items = [encode(self.encoding, p) for p in valid]
        self.model = MusicModel(config, self.encoding.outputs)

    def collate(self, items: Sequence[Tensor]) -> Batch:
        return tokens_batch(items) if self.encoding.tokens else frames_batch(items)

    def batches(self, epoch: int) -> list[Batch]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        rank, world = rank_and_world()
        index = bucket_batches([len(t) for t in self.train_items], self.config.batch_size, g)
        out = []
        for b in index:
            if len(b) < world:
                continue
            items = [self.train_items[i] for i in b[rank::world]]
            if self.config.augment and not self.encoding.tokens:
                k = self.config.augment
                shifts = torch.randint(-k, k + 1, (len(items),), generator=g).tolist()
                items = [music.transpose_roll(r, s) for r, s in zip(items, shifts, strict=True)]
            out.append(self.collate(items))
        return out

    def loss(self, model: nn.Module, batch: Batch, carry):
        total, steps = nll_terms(model, batch)  # type: ignore[arg-type]
        return total / steps, int(steps), None

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {"val_loss": mean_nll(model, self.valid_items, self.collate)}  # type: ignore[arg-type]

    def describe(self) -> dict:
        return {
            "model": asdict(self.config),
            "vocab": self.encoding.to_json(),  # the key every task uses
            "source": self.source,
            "seed": self.seed,
        }


def mean_nll(model: MusicModel, items: Sequence[Tensor], collate) -> float:
    """Nats per step (per note for melodies) over all steps of ``items``."""
    total = count = 0.0
    with evaluating(model) as to_model:
        for index in bucket_batches([len(t) for t in items], EVAL_BATCH, shuffle=False):
            nats, steps = nll_terms(model, to_model(collate([items[i] for i in index])))
            total, count = total + float(nats), count + int(steps)
    return total / max(count, 1)


# ---- runs ------------------------------------------------------------------------------
def train(
    source: dict,
    config: MusicConfig,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    epochs: int | None = None,
) -> dict[str, float]:
    """Train a music model on the pieces ``source`` describes into ``out``."""
    if config.kind != source.get("kind"):
        raise ValueError(f"kind {config.kind!r} does not match the source {source.get('kind')!r}")
    source = source | {"step": config.step, "transpose": config.transpose}
    seed_everything(train_config.seed)
    names, items = load_named(source)
    parts = split_of(source, len(items))
    write_split(Path(out) / "split.json", names, parts)
    train_set, valid_set = ([items[i] for i in part] for part in parts[:2])
    task = MusicTask(train_set, valid_set, config, train_config.seed, source=source)
    return fit_task(task, train_config, out, until, epochs)


def _task_from_meta(meta: dict) -> MusicTask:
    return split_task_from_meta(meta, load_source, MusicTask, MusicConfig, Encoding)


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


def model_from(info: dict) -> tuple[MusicModel, Encoding]:
    """The (untrained) model a run's ``task_config`` describes, and its encoding."""
    encoding = Encoding.from_json(info["vocab"])
    return MusicModel(MusicConfig(**info["model"]), encoding.outputs), encoding


def held_out(meta: dict, split: str = "test") -> list[Tensor]:
    """The encoded pieces of the run's ``split`` ("valid" or "test")."""
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    _, valid, test = load_source(meta["task_config"]["source"])
    encoding = Encoding.from_json(meta["task_config"]["vocab"])
    return [encode(encoding, p) for p in (valid if split == "valid" else test)]
