"""Sequence-to-sequence transduction: grapheme-to-phoneme on CMUdict, or any pairs file.

Data sources (stored in the checkpoint, so a run can be resumed and scored again):
``{"kind": "cmudict", "path": None or FILE, "stress": bool, "seed": int}`` (split 90/5/5 by
a seeded hash of the word, ``elman.data.pairs``), or ``{"kind": "pairs", "train": F,
"valid": F or None, "test": F or None, "seed": int}`` (tab-separated; without ``valid``, 5%
of ``train`` is held out by the same hash). Sources are tokenized by character (default) or
by whitespace, targets by whitespace (default) or character; whitespace tokens are refused
where nearly every text is one distinct token (``check_tokens``: dates, codes, single words).
Metrics are named for the targets (``metric_names``): ``wer``/``per`` for whitespace tokens,
``sequence_error_rate``/``char_error_rate`` for characters.

Training uses each source's first reference (``all_references``: every one, as separate
pairs); scoring counts a prediction right if it equals any reference and takes its edit
distance to the closest one. The target's start token is ``<eos>`` (fairseq's convention),
so the vocabulary needs no extra symbol.

Limits: a source longer than ``max_source`` tokens is an error (not a slow decode), and
decoding stops after ``max_target`` tokens (returned with ``finished: False``). Source
tokens training never saw become ``<unk>`` and are reported beside each prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.data.batching import bucket_batches, pad
from elman.data.pairs import Pairs, read_cmudict, read_pairs, split_pairs
from elman.data.tokenize import EOS_ID, PAD_ID, UNK_ID, Tokenizer
from elman.decode import Hypothesis, Sampling, beam_search, greedy_search
from elman.fields import option
from elman.nn import CELLS
from elman.nn.checks import check_fields
from elman.nn.seq2seq import ATTENTIONS, Seq2Seq, select
from elman.tasks.rundir import fit_split_source, resume_run, split_task_from_meta
from elman.tasks.scores import error_rates
from elman.train import TrainConfig
from elman.train.distributed import rank_and_world
from elman.train.evaluation import evaluating

NAME = "seq2seq"
EVAL_BATCH = 256
SIDES = ("char", "whitespace")
# whitespace tokens are refused when over SINGLE_SHARE of >= MIN_TEXTS texts are one token and
# the distinct tokens number over DISTINCT_SHARE of the texts (see ``check_tokens``)
MIN_TEXTS, SINGLE_SHARE, DISTINCT_SHARE = 20, 0.9, 0.5


@dataclass(frozen=True, kw_only=True)
class Seq2SeqConfig:
    """The encoder-decoder, its tokens and its training. Every field with help is also an
    option of `elman train seq2seq` (``elman.fields``); the defaults are the recommended
    model."""

    cell: str = option("lstm", f"recurrent cell: {', '.join(CELLS)}", choices=CELLS)
    embedding: int = option(64, "source and target embedding size")
    hidden: int = option(256, "encoder units per direction (the decoder is this x directions wide)")
    layers: int = option(1, "stacked layers in the encoder and in the decoder")
    bidirectional: bool = option(True, "bidirectional encoder")
    attention: str = option("general", f"attention score: {', '.join(ATTENTIONS)}")
    # feeds h̃_{t-1}, the previous attentional state, to the next step's input
    input_feeding: bool = option(
        False, "feed the previous attentional state to the decoder (Luong)"
    )
    bridge: bool = option(True, "start the decoder from the encoder's final states (else zeros)")
    dropout: float = option(
        0.2, "dropout on embeddings, between layers and before the output, in [0, 1)"
    )
    label_smoothing: float = option(0.0, "label smoothing of the training loss, in [0, 1)")
    sample_rate: float = option(
        0.0, "scheduled sampling: share of decoder inputs taken from the model, in [0, 1)"
    )
    # Bengio et al.'s linear schedule; 0: the full rate from the first step
    sample_ramp: float = option(
        0.0, "scheduled sampling: share of training over which the rate rises from 0"
    )
    source_tokens: str = option("char", "source tokenization: char or whitespace")
    target_tokens: str = option("whitespace", "target tokenization: char or whitespace")
    lower: bool = option(True, "lower-case sources")
    all_references: bool = option(False, "train on every reference of a source, not just the first")
    max_source: int = option(100, "longest source in tokens (longer inputs are an error)")
    max_target: int = option(100, "longest output in tokens (decoding stops there)")
    batch_size: int = option(64, "pairs per batch")

    def __post_init__(self) -> None:
        check_fields(
            self,
            {
                "cell": CELLS,
                "attention": ATTENTIONS,
                "source_tokens": SIDES,
                "target_tokens": SIDES,
            },
            ("embedding", "hidden", "layers", "max_source", "max_target", "batch_size"),
            rates=("dropout", "label_smoothing", "sample_rate"),
            flags=("bidirectional", "input_feeding", "bridge", "lower", "all_references"),
        )
        ramp = self.sample_ramp
        if isinstance(ramp, bool) or not isinstance(ramp, int | float) or not 0 <= ramp <= 1:
            raise ValueError(f"sample_ramp must be a share of training in [0, 1], got {ramp!r}")


# ---- data ------------------------------------------------------------------------------
def load_source(source: dict) -> tuple[Pairs, Pairs, Pairs]:
    """(train, valid, test) pairs of a data source (see the module docstring)."""
    kind, seed = source.get("kind"), source.get("seed", 0)
    if kind == "cmudict":
        pairs = read_cmudict(source.get("path"), bool(source.get("stress", False)))
        return split_pairs(pairs, (0.9, 0.05, 0.05), seed)
    if kind == "pairs":
        train = read_pairs(source["train"])
        test = read_pairs(source["test"]) if source.get("test") else []
        if source.get("valid"):
            return train, read_pairs(source["valid"]), test
        kept, held, _ = split_pairs(train, (0.95, 0.05, 0.0), seed)
        return kept, held, test
    raise ValueError(f"seq2seq data source kind must be 'cmudict' or 'pairs', got {kind!r}")


def check_tokens(texts: Sequence[str], tokens: str, side: str) -> None:
    """Refuse whitespace tokens when nearly every text is one token of its own (dates, codes,
    single words): each would be a class to memorise, and every unseen one ``<unk>``, so the
    model could never produce a new output. Characters are what such texts are made of; the
    user is told rather than switched silently, so a run's config is what was asked for."""
    if tokens != "whitespace" or len(texts) < MIN_TEXTS:
        return
    single = sum(len(t.split()) == 1 for t in texts) / len(texts)
    distinct = len({w for t in texts for w in t.split()})
    if single > SINGLE_SHARE and distinct > DISTINCT_SHARE * len(texts):
        raise ValueError(
            f"--{side}-tokens whitespace: {single:.0%} of the {len(texts)} training {side}s are "
            f"a single token and there are {distinct} distinct tokens, so each {side} would be "
            f"one symbol to memorise and the model could not generalise; pass "
            f"--{side}-tokens char to read them character by character"
        )


@dataclass(frozen=True)
class Vocabularies:
    source: Tokenizer
    target: Tokenizer

    @classmethod
    def fit(cls, pairs: Pairs, config: Seq2SeqConfig) -> Vocabularies:
        sources, targets = [s for s, _ in pairs], [t for _, refs in pairs for t in refs]
        check_tokens(sources, config.source_tokens, "source")
        check_tokens(targets, config.target_tokens, "target")
        return cls(
            Tokenizer.fit(sources, config.source_tokens, lower=config.lower),
            Tokenizer.fit(targets, config.target_tokens),
        )

    def to_json(self) -> dict:
        return {"source": self.source.to_json(), "target": self.target.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> Vocabularies:
        return cls(Tokenizer.from_json(data["source"]), Tokenizer.from_json(data["target"]))

    def encode_source(self, text: str, limit: int, what: str) -> Tensor:
        tokens = self.source.split(text) if isinstance(text, str) else []
        if not tokens or not str(text).strip():
            raise ValueError(f"{what}: an empty source {text!r}; expected at least one token")
        if len(tokens) > limit:
            raise ValueError(
                f"{what}: {len(tokens)} source tokens, more than max_source={limit} "
                f"(the model's documented limit): {text[:40]!r}..."
            )
        return torch.tensor(self.source.ids(tokens), dtype=torch.int64)

    def unknown(self, text: str) -> list[str]:
        """Source tokens of ``text`` the vocabulary lacks (they were read as ``<unk>``)."""
        tokens = self.source.split(text)
        return [t for t, i in zip(tokens, self.source.ids(tokens), strict=True) if i == UNK_ID]


Encoded = list[tuple[Tensor, Tensor]]  # (source ids, target ids ending in <eos>)


def encode_pairs(vocab: Vocabularies, pairs: Pairs, config: Seq2SeqConfig, what: str) -> Encoded:
    out = []
    for i, (source, refs) in enumerate(pairs):
        src = vocab.encode_source(source, config.max_source, f"{what} pair {i}")
        for ref in refs if config.all_references else refs[:1]:
            tgt = vocab.target.encode(ref, eos=True)
            if len(tgt) > config.max_target:
                raise ValueError(
                    f"{what} pair {i}: target of {len(tgt) - 1} tokens, more than "
                    f"max_target={config.max_target}"
                )
            out.append((src, torch.tensor(tgt, dtype=torch.int64)))
    return out


@dataclass(frozen=True)
class Batch:
    """source (B, S), lengths (B,), target_in (B, T) starting with <eos>, target_out (B, T)."""

    source: Tensor
    lengths: Tensor
    target_in: Tensor
    target_out: Tensor


def collate(data: Encoded, index: Sequence[int]) -> Batch:
    source, lengths = pad([data[i][0] for i in index], PAD_ID)
    target_out, _ = pad([data[i][1] for i in index], PAD_ID)
    start = torch.full((len(index), 1), EOS_ID, dtype=torch.int64)
    target_in = torch.cat([start, target_out[:, :-1]], dim=1).masked_fill(
        target_out == PAD_ID, PAD_ID
    )
    return Batch(source, lengths, target_in, target_out)


# ---- model and task --------------------------------------------------------------------
def build_model(vocab: Vocabularies, config: Seq2SeqConfig) -> Seq2Seq:
    c = config
    return Seq2Seq(
        len(vocab.source),
        len(vocab.target),
        c.cell,
        c.embedding,
        c.hidden,
        c.layers,
        c.bidirectional,
        c.attention,
        c.input_feeding,
        c.bridge,
        c.dropout,
    )


def batch_loss(model: nn.Module, batch: Batch, smoothing: float, sample_rate: float) -> Tensor:
    logits, _ = model(batch.source, batch.lengths, batch.target_in, sample_rate)
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        batch.target_out.reshape(-1),
        ignore_index=PAD_ID,
        label_smoothing=smoothing,
    )


class Seq2SeqTask:
    """The trainer's view of transduction (see ``elman.train.Task``)."""

    name = NAME

    def __init__(
        self,
        train: Pairs,
        valid: Pairs,
        config: Seq2SeqConfig,
        seed: int = 0,
        vocab: Vocabularies | None = None,
        source: dict | None = None,
    ) -> None:
        self.config, self.seed, self.source = config, seed, source or {}
        self.vocab = vocab or Vocabularies.fit(train, config)
        self.train_data = encode_pairs(self.vocab, train, config, "training")
        self.valid_data = encode_pairs(self.vocab, valid, config, "validation")
        self.valid_pairs = valid
        self.model = build_model(self.vocab, config)
        self.sample_rate = config.sample_rate

    def at_step(self, step: int, steps: int) -> None:
        """Scheduled sampling's rate at this step (the trainer calls this before each step)."""
        c = self.config
        ramp = c.sample_ramp * steps
        self.sample_rate = c.sample_rate * (min(1.0, step / ramp) if ramp else 1.0)

    def batches(self, epoch: int) -> list[Batch]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        rank, world = rank_and_world()
        index = bucket_batches([len(s) for s, _ in self.train_data], self.config.batch_size, g)
        return [collate(self.train_data, b[rank::world]) for b in index if len(b) >= world]

    def loss(self, model: nn.Module, batch: Batch, carry):
        c = self.config
        tokens = int((batch.target_out != PAD_ID).sum())
        return batch_loss(model, batch, c.label_smoothing, self.sample_rate), tokens, None

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        scores = score(model, self.vocab, self.valid_pairs, self.config)
        sequences, tokens, _ = metric_names(self.config)
        return {
            "val_loss": mean_loss(model, self.valid_data),
            f"val_{sequences}": scores[sequences],
            f"val_{tokens}": scores[tokens],
        }

    def describe(self) -> dict:
        return {
            "model": asdict(self.config),
            "vocab": self.vocab.to_json(),
            "source": self.source,
            "seed": self.seed,
        }


def mean_loss(model: nn.Module, data: Encoded) -> float:
    """Teacher-forced nats per target token (no smoothing, no sampling)."""
    total = count = 0.0
    with evaluating(model) as to_model:
        for index in bucket_batches([len(s) for s, _ in data], EVAL_BATCH, shuffle=False):
            batch = collate(data, index)
            tokens = int((batch.target_out != PAD_ID).sum())  # counted before the move
            total += float(batch_loss(model, to_model(batch), 0.0, 0.0)) * tokens
            count += tokens
    return total / max(count, 1)


# ---- decoding and scoring --------------------------------------------------------------
def transduce(
    model: Seq2Seq,
    vocab: Vocabularies,
    sources: Sequence[str],
    config: Seq2SeqConfig,
    beam: int = 1,
    nbest: int = 1,
    alpha: float = 0.0,
    sampling: Sampling | None = None,
) -> list[list[Hypothesis]]:
    """The n-best outputs of each source, best first: beam search, greedy search when
    ``beam`` and ``nbest`` are 1, or one sample per source drawn by ``sampling``."""
    if sampling is not None and sampling.temperature > 0 and (beam, nbest) != (1, 1):
        raise ValueError(f"sampling draws one output per source: use beam=1, got beam={beam}")
    data = [vocab.encode_source(s, config.max_source, f"input {i}") for i, s in enumerate(sources)]
    out: list[list[Hypothesis]] = [[] for _ in data]
    with evaluating(model) as to_model:
        for index in bucket_batches([len(d) for d in data], EVAL_BATCH, shuffle=False):
            source, lengths = to_model(pad([data[i] for i in index], PAD_ID))
            state = model.encode(source, lengths)
            n, limit = len(index), config.max_target
            if beam == 1 and nbest == 1:
                found = [
                    [h]
                    for h in greedy_search(model.step, state, n, EOS_ID, EOS_ID, limit, sampling)
                ]
            else:
                found = beam_search(
                    model.step, select, state, n, EOS_ID, EOS_ID, beam, limit, alpha, nbest
                )
            for i, hyps in zip(index, found, strict=True):
                out[i] = hyps
    return out


def score(
    model: Seq2Seq,
    vocab: Vocabularies,
    pairs: Pairs,
    config: Seq2SeqConfig,
    beam: int = 1,
    alpha: float = 0.0,
) -> dict[str, float]:
    """Error rates of the best output of each source, named per ``metric_names``: the share
    of outputs equal to no reference, and edit distance per reference token."""
    best = transduce(model, vocab, [s for s, _ in pairs], config, beam, 1, alpha)
    predictions = [[vocab.target.tokens[t] for t in hyps[0].tokens] for hyps in best]
    references = [[vocab.target.split(r) for r in refs] for _, refs in pairs]
    rates = error_rates(predictions, references)
    names = metric_names(config)
    return {new: rates[old] for new, old in zip(names, ("wer", "per", "words"), strict=True)}


def metric_names(config: Seq2SeqConfig) -> tuple[str, str, str]:
    """(whole-output error rate, token error rate, count) as named for the target tokens:
    ``wer``/``per``/``words`` for whitespace tokens (a word and its phonemes, the G2P
    convention), ``sequence_error_rate``/``char_error_rate``/``sequences`` for characters."""
    if config.target_tokens == "char":
        return "sequence_error_rate", "char_error_rate", "sequences"
    return "wer", "per", "words"


# ---- runs ------------------------------------------------------------------------------
def train(
    source: dict,
    config: Seq2SeqConfig,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    epochs: int | None = None,
) -> dict[str, float]:
    """Train a transducer on the data ``source`` describes into ``out``."""
    return fit_split_source(
        load_source, Seq2SeqTask, source, config, train_config, out, until, epochs
    )


def _task_from_meta(meta: dict) -> Seq2SeqTask:
    return split_task_from_meta(meta, load_source, Seq2SeqTask, Seq2SeqConfig, Vocabularies)


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


def model_from(info: dict) -> tuple[Seq2Seq, tuple[Vocabularies, Seq2SeqConfig]]:
    """The (untrained) model a checkpoint's ``task_config`` describes, with its vocabularies
    and config (``elman.tasks.rundir.open_model`` fills in the weights)."""
    vocab, config = Vocabularies.from_json(info["vocab"]), Seq2SeqConfig(**info["model"])
    return build_model(vocab, config), (vocab, config)


__all__ = [
    "Seq2SeqConfig",
    "Seq2SeqTask",
    "Vocabularies",
    "load_source",
    "metric_names",
    "model_from",
    "resume",
    "score",
    "train",
    "transduce",
]
