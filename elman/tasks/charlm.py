"""Character-level language modeling (char-rnn): train on any UTF-8 text, generate from a prompt.

Model: embedding -> stacked RNN/LSTM/GRU -> linear softmax over the characters. Training uses
truncated BPTT over contiguous batches (``elman.data.stream``): the hidden state flows from one
chunk of ``seq_len`` characters to the next. Validation holds out the last ``valid_fraction``
of the text and reports nats and bits per character with the state carried through it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.data.stream import Chunk, TokenStream
from elman.data.text import bundled_corpus_path, read_text, split_by_position
from elman.data.vocab import CharVocab
from elman.decode import Sampling, next_token
from elman.nn import CELLS, build_recurrent
from elman.nn.checks import check_positive_int
from elman.train import TrainConfig, Trainer, seed_everything
from elman.train.checkpoint import CheckpointError, load_checkpoint, read_meta, unprefixed
from elman.train.distributed import shard_rows

NAME = "charlm"
TextPaths = str | Path | Sequence[str | Path] | None
EVAL_ROWS = 16


@dataclass(frozen=True)
class CharLMConfig:
    """The model and how text is fed to it.

    cell: one of ``elman.nn.CELLS``. embedding, hidden, layers: sizes. dropout: between layers
    and before the output layer. batch_size: parallel rows of text per batch. seq_len:
    characters per chunk (gradients flow back this far; the state flows on).
    valid_fraction: the held-out tail of the text.
    """

    cell: str = "lstm"
    embedding: int = 128
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.0
    batch_size: int = 64
    seq_len: int = 128
    valid_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {self.cell!r}")
        for name in ("embedding", "hidden", "layers", "batch_size", "seq_len"):
            check_positive_int(name, getattr(self, name))
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction!r}")


# Defaults of ``elman train charlm``, chosen with bench/charlm.py (see its results).
# 3-minute probes (LSTM, lr 3e-3, B=32): 2x256 1.824 nats/char, 1x512 1.837, 2x384 1.939.
# 10 minutes, dropout 0.2: GRU 1.665, LSTM 1.713 (without dropout LSTM 1.750: it overfits).
DEFAULT_MODEL = CharLMConfig(
    embedding=64, hidden=256, layers=2, dropout=0.2, batch_size=32, seq_len=128
)
DEFAULT_TRAIN = {"steps": 2500, "lr": 3e-3, "warmup": 50, "eval_every": 250}


class CharLM(nn.Module):
    """Embedding -> recurrent layers -> logits over ``vocab_size`` characters."""

    def __init__(self, vocab_size: int, config: CharLMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(vocab_size, config.embedding)
        self.rnn = build_recurrent(
            config.cell,
            config.embedding,
            config.hidden,
            config.layers,
            config.dropout if config.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, vocab_size)

    def forward(self, x: Tensor, state=None, starts: Tensor | None = None):
        """Logits (B, T, V) for ids ``x`` (B, T) and the final state; ``starts`` (B, T) marks
        where documents begin: the state of those rows is zeroed before that step."""
        if starts is None:
            h, state = self.rnn(self.embed(x), state)
            return self.head(self.drop(h)), state
        outs, cuts = [], [0, *sorted(set(starts.any(0).nonzero().flatten().tolist()) - {0})]
        for a, b in zip(cuts, [*cuts[1:], x.shape[1]], strict=True):
            if state is not None:
                keep = (~starts[:, a]).to(self.embed.weight.dtype)[None, :, None]
                state = (
                    tuple(s * keep for s in state) if isinstance(state, tuple) else (state * keep)
                )
            logits, state = self.forward(x[:, a:b], state)
            outs.append(logits)
        return torch.cat(outs, dim=1), state


def _nll(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


class CharLMTask:
    """The trainer's view of character language modeling (see ``elman.train.Task``)."""

    name = NAME

    def __init__(
        self,
        text: str,
        config: CharLMConfig,
        seed: int = 0,
        vocab: CharVocab | None = None,
        source: dict | None = None,
        doc_starts: Sequence[int] = (),
    ) -> None:
        self.config, self.seed = config, seed
        train_text, valid_text = split_by_position(text, config.valid_fraction)
        self.vocab = vocab or CharVocab.from_text(text)
        self.train_ids = self.vocab.encode(train_text)
        self.valid_ids = self.vocab.encode(valid_text)
        cut = len(train_text)
        self.train_starts = torch.tensor([s for s in doc_starts if s < cut], dtype=torch.long)
        self.valid_starts = torch.tensor(
            [s - cut for s in doc_starts if s >= cut], dtype=torch.long
        )
        self.source = source or {}
        self.rows = shard_rows(config.batch_size)
        TokenStream(self.train_ids, config.batch_size, config.seq_len)  # fail early if short
        self.model = CharLM(len(self.vocab), config)

    def batches(self, epoch: int) -> TokenStream:
        # shift the chunk boundaries each epoch, the same way on every rank and every resume
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        offset = 0 if epoch == 0 else int(torch.randint(self.config.seq_len, (1,), generator=g))
        starts = self.train_starts - offset
        return TokenStream(
            self.train_ids[offset:],
            self.config.batch_size,
            self.config.seq_len,
            starts[starts > 0],
            rows=self.rows,
        )

    def loss(self, model: nn.Module, batch: Chunk, carry):
        logits, state = model(batch.x, carry, batch.starts)
        return _nll(logits, batch.y), batch.y.numel(), state

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        nats = evaluate_ids(model, self.valid_ids, doc_starts=self.valid_starts)
        return {"val_loss": nats, "val_bits_per_char": nats / math.log(2)}

    def describe(self) -> dict:
        return {
            "model": asdict(self.config),
            "vocab": self.vocab.to_json(),
            "source": self.source,
            "seed": self.seed,
        }


def evaluate_ids(
    model: nn.Module, ids: Tensor, rows: int = EVAL_ROWS, doc_starts: Tensor | None = None
) -> float:
    """Mean negative log-likelihood (nats/char) of ``ids`` under ``model``; the state is carried
    along each of ``rows`` parallel slices and reset where a document starts."""
    rows = max(1, min(rows, (ids.numel() - 1) // 2))
    stream = TokenStream(ids, rows, 256, doc_starts, full_chunks_only=False)
    total, count, state = 0.0, 0, None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for chunk in stream:
            logits, state = model(chunk.x, state, chunk.starts)
            total += _nll(logits, chunk.y).item() * chunk.y.numel()
            count += chunk.y.numel()
    model.train(was_training)
    return total / count


def text_source(paths: TextPaths = None) -> tuple[str, list[int], dict]:
    """Text, document starts and provenance of ``paths`` (the bundled corpus when None/empty).

    Several files are concatenated as separate documents: the state resets between them.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    bundled = not paths
    files = [bundled_corpus_path()] if bundled else [Path(p) for p in paths]
    texts = [read_text(p) for p in files]
    starts = [sum(len(t) for t in texts[:i]) for i in range(1, len(texts))]
    text = "".join(texts)
    source = {
        "bundled": bundled,
        "paths": [] if bundled else [str(p.resolve()) for p in files],
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "chars": len(text),
        "doc_starts": starts,
    }
    return text, starts, source


def train(
    text_path: TextPaths,
    config: CharLMConfig,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
) -> dict[str, float]:
    """Train a character model on text file(s) (the bundled corpus when None) into ``out``."""
    seed_everything(train_config.seed)
    text, starts, source = text_source(text_path)
    task = CharLMTask(text, config, train_config.seed, source=source, doc_starts=starts)
    return Trainer(task, train_config, out).fit(until)


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    meta = read_meta(Path(out) / "last.safetensors", NAME)
    task = _task_from_meta(meta)
    train_config = TrainConfig.from_json(meta["train"])
    if steps is not None:
        train_config = TrainConfig.from_json({**meta["train"], "steps": steps})
    trainer = Trainer(task, train_config, out)
    trainer.restore()
    return trainer.fit(until)


def _task_from_meta(meta: dict) -> CharLMTask:
    """Rebuild a run's task from its checkpoint header; its text must be unchanged."""
    info = meta["task_config"]
    source = info["source"]
    text, starts, now = text_source(source["paths"])
    if now["sha256"] != source["sha256"]:
        raise CheckpointError(
            f"the training text ({', '.join(source['paths']) or 'bundled'}) "
            "changed since this run started; the run needs the same text"
        )
    vocab = CharVocab.from_json(info["vocab"])
    return CharLMTask(text, CharLMConfig(**info["model"]), info["seed"], vocab, source, starts)


def validation_ids(out: str | Path) -> Tensor:
    """The held-out characters of the run in ``out``, re-read from its training text."""
    return _task_from_meta(read_meta(Path(out) / "last.safetensors", NAME)).valid_ids


def load(out: str | Path, which: str = "best") -> tuple[CharLM, CharVocab, dict]:
    """The model in ``out`` (``which``: "best" or "last" checkpoint), its vocabulary, meta."""
    out = Path(out)
    if not out.is_dir():
        raise CheckpointError(f"model directory {str(out)!r} does not exist")
    path = out / f"{which}.safetensors"
    tensors, meta = load_checkpoint(path, NAME)
    info = meta["task_config"]
    vocab = CharVocab.from_json(info["vocab"])
    known = {f.name for f in fields(CharLMConfig)}
    model = CharLM(
        len(vocab), CharLMConfig(**{k: v for k, v in info["model"].items() if k in known})
    )
    model.load_state_dict(unprefixed("model.", tensors))
    return model.eval(), vocab, meta


def generate(
    model: CharLM,
    vocab: CharVocab,
    prompt: str,
    length: int,
    sampling: Sampling | None = None,
    unknown: str = "error",
) -> Iterator[str]:
    """Characters following ``prompt``, one at a time (prime with the prompt, then sample)."""
    check_positive_int("length", length)
    ids = vocab.encode(prompt, unknown)
    if ids.numel() == 0:
        raise ValueError(
            f"prompt: expected at least one character the vocabulary knows, got {prompt!r}"
        )
    sampling = sampling or Sampling()
    generator = sampling.generator()
    model.eval()
    with torch.no_grad():
        logits, state = model(ids[None, :])
        for _ in range(length):
            token = next_token(logits[:, -1], sampling, generator)
            yield vocab.chars[int(token)]
            logits, state = model(token[:, None], state)
