"""What character and word language models share: the model, TBPTT training over a token
stream with document boundaries, and evaluation with the state carried through held-out text.

Model: embedding -> (dropout) -> stacked RNN/LSTM/GRU -> dropout -> linear softmax, with the
AWD-LSTM regularisers of ``Regularizers`` (``elman.tasks.awd``) when asked. With
``tie`` the output layer reuses the embedding matrix (Press & Wolf 2017; Inan et al. 2017);
when ``hidden`` differs from ``embedding`` a linear projection maps the recurrent output down
to the embedding size first. With ``cutoffs`` the output layer is an adaptive softmax (Grave
et al. 2017, ``nn.AdaptiveLogSoftmaxWithLoss``): the most frequent ids (the vocabulary is
ranked by frequency) form a full head, rarer ones smaller clusters reached through it, so a
training step computes the large tail clusters only for the targets that fall in them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.data.stream import Chunk, TokenStream
from elman.nn import embedding_dropout
from elman.tasks.awd import Regularizers, penalty, recurrent, regularizers_of, sequence_dropout
from elman.tasks.transfer import layer_groups
from elman.train.distributed import shard_rows
from elman.train.evaluation import evaluating

EVAL_ROWS = 16


class RecurrentLM(nn.Module):
    """Embedding -> recurrent layers -> logits over ``vocab_size`` tokens."""

    def __init__(
        self,
        vocab_size: int,
        cell: str,
        embedding: int,
        hidden: int,
        layers: int,
        dropout: float = 0.0,
        embed_dropout: float = 0.0,
        tie: bool = False,
        cutoffs: Sequence[int] = (),
        regularizers: Regularizers | None = None,
    ) -> None:
        super().__init__()
        r = self.regularizers = regularizers or Regularizers()
        self.embed = nn.Embedding(vocab_size, embedding)
        self.embed_drop = sequence_dropout(embed_dropout, r.locked_dropout)
        self.rnn = recurrent(r, cell, embedding, hidden, layers, dropout)
        self.drop = sequence_dropout(dropout, r.locked_dropout)
        self.proj = nn.Linear(hidden, embedding) if tie and hidden != embedding else None
        size = embedding if tie else hidden
        if cutoffs:
            if tie:
                raise ValueError("cutoffs: an adaptive softmax cannot be tied to the embedding")
            if not all(0 < c < vocab_size for c in cutoffs):
                raise ValueError(
                    f"cutoffs: each must lie in (0, vocabulary size {vocab_size}), got "
                    f"{list(cutoffs)}"
                )
            self.head = nn.AdaptiveLogSoftmaxWithLoss(size, vocab_size, list(cutoffs), 4.0)
        else:
            self.head = nn.Linear(size, vocab_size)
        if tie:
            self.head.weight = self.embed.weight

    def forward(
        self, x: Tensor, state=None, starts: Tensor | None = None, targets: Tensor | None = None
    ):
        """Logits (B, T, V) for ids ``x`` (B, T) and the final state; ``starts`` (B, T) marks
        where documents begin: the state of those rows is zeroed before that step. Given
        ``targets`` (B, T), (mean nats per target, state, AR/TAR penalty) instead, without
        computing every logit of an adaptive softmax; data-parallel training goes through
        ``forward``, so the penalty is computed here (zero in evaluation or when off)."""
        h, state, extra = self._features(x, state, starts)
        if targets is not None:
            return self.nll(h, targets), state, extra
        return self.logits(h), state

    def features(self, x: Tensor, state=None, starts: Tensor | None = None):
        """The inputs of the output layer (B, T, size) and the final state."""
        h, state, _ = self._features(x, state, starts)
        return h, state

    def _features(self, x: Tensor, state, starts: Tensor | None):
        # each stretch between document starts is one call of the layers, so it draws its
        # own dropout masks (the stretches are independent sequences anyway)
        if starts is None:
            return self._segment(x, state)
        outs, cuts = [], [0, *sorted(set(starts.any(0).nonzero().flatten().tolist()) - {0})]
        extra = x.new_zeros((), dtype=self.embed.weight.dtype)
        for a, b in zip(cuts, [*cuts[1:], x.shape[1]], strict=True):
            if state is not None:
                keep = (~starts[:, a]).to(self.embed.weight.dtype)[None, :, None]
                state = (
                    tuple(s * keep for s in state) if isinstance(state, tuple) else (state * keep)
                )
            h, state, part = self._segment(x[:, a:b], state)
            outs.append(h)
            extra = extra + part * ((b - a) / x.shape[1])  # a step-weighted mean of segments
        return torch.cat(outs, dim=1), state, extra

    def _segment(self, x: Tensor, state):
        """One stretch without document starts: (features, state, AR/TAR penalty)."""
        r = self.regularizers
        e = embedding_dropout(self.embed, x, r.token_dropout, self.training)
        raw, state = self.rnn(self.embed_drop(e), state)
        h = self.drop(raw)
        extra = penalty(h, raw, r.ar, r.tar) if self.training else raw.new_zeros(())
        return (h if self.proj is None else self.proj(h)), state, extra

    def logits(self, h: Tensor) -> Tensor:
        """(B, T, V) scores whose softmax is the next-token distribution (adaptive softmax:
        the log-probabilities themselves)."""
        if isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):
            return self.head.log_prob(h.reshape(-1, h.shape[-1])).view(*h.shape[:-1], -1)
        return self.head(h)

    def nll(self, h: Tensor, y: Tensor) -> Tensor:
        """Mean nats per target of features ``h`` (B, T, size) against ids ``y`` (B, T)."""
        if isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):
            return self.head(h.reshape(-1, h.shape[-1]), y.reshape(-1)).loss
        return nll(self.head(h), y)


def arguments(config: Regularizers) -> tuple:
    """``RecurrentLM``'s arguments after the vocabulary size, from a language-model config:
    its cell, sizes, dropouts, optional ``tie`` and ``cutoffs``, and regularisers."""
    c = config
    sizes = (c.cell, c.embedding, c.hidden, c.layers, c.dropout, c.embed_dropout)
    return (*sizes, getattr(c, "tie", False), getattr(c, "cutoffs", ()), regularizers_of(c))


def nll(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy (nats per token) of (..., V) logits against (...) targets."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def evaluate_ids(
    model: nn.Module, ids: Tensor, rows: int = EVAL_ROWS, doc_starts: Tensor | None = None
) -> float:
    """Mean negative log-likelihood (nats/token) of ``ids`` under ``model``; the state is
    carried along each of ``rows`` parallel slices and reset where a document starts."""
    rows = max(1, min(rows, (ids.numel() - 1) // 2))
    stream = TokenStream(ids, rows, 256, doc_starts, full_chunks_only=False)
    total, count, state = 0.0, 0, None
    with evaluating(model) as to_model:
        for chunk in stream:
            chunk = to_model(chunk)
            loss, state, _ = model(chunk.x, state, chunk.starts, chunk.y)
            total += loss.item() * chunk.y.numel()
            count += chunk.y.numel()
    return total / count


def starts_tensor(starts: Sequence[int], low: int = 0, high: int | None = None) -> Tensor:
    """Document starts inside [low, high), shifted to begin at ``low``."""
    keep = [s - low for s in starts if s >= low and (high is None or s < high)]
    return torch.tensor(keep, dtype=torch.long)


class StreamLMTask:
    """The trainer's view of a language model trained by truncated BPTT on one token stream
    (see ``elman.train.Task``); subclasses name the task, add metrics and describe it."""

    name = "lm"

    def __init__(
        self,
        model: nn.Module,
        train_ids: Tensor,
        valid_ids: Tensor,
        batch_size: int,
        seq_len: int,
        seed: int,
        train_starts: Tensor | None = None,
        valid_starts: Tensor | None = None,
    ) -> None:
        self.model, self.seed = model, seed
        self.train_ids, self.valid_ids = train_ids, valid_ids
        self.batch_size, self.seq_len = batch_size, seq_len
        none = torch.zeros(0, dtype=torch.long)
        self.train_starts = none if train_starts is None else train_starts
        self.valid_starts = valid_starts
        self.rows = shard_rows(batch_size)
        TokenStream(train_ids, batch_size, seq_len)  # fail early if the text is too short

    def batches(self, epoch: int) -> TokenStream:
        # shift the chunk boundaries each epoch, the same way on every rank and every resume
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        offset = 0 if epoch == 0 else int(torch.randint(self.seq_len, (1,), generator=g))
        starts = self.train_starts - offset
        return TokenStream(
            self.train_ids[offset:], self.batch_size, self.seq_len, starts[starts > 0], self.rows
        )

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embedding, each recurrent layer, then the output layer (ULMFiT's groups)."""
        return layer_groups(self.model, ("embed",), "rnn")

    def loss(self, model: nn.Module, batch: Chunk, carry):
        nats, state, extra = model(batch.x, carry, batch.starts, batch.y)
        return nats + extra, batch.y.numel(), state, nats  # the nats alone are reported

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        nats = evaluate_ids(model, self.valid_ids, doc_starts=self.valid_starts)
        return {"val_loss": nats, **self.metrics(nats, "val")}

    def metrics(self, nats: float, split: str) -> dict[str, float]:
        """Metrics derived from nats per token (e.g. bits per character, perplexity)."""
        return {}
