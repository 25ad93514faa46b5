"""The AWD-LSTM regularisers as task options (Merity, Keskar & Socher 2017, "Regularizing and
Optimizing LSTM Language Models"), shared by every task config that mixes in ``Regularizers``:

    W_hh' = m ⊙ W_hh / (1 - p_w)                          weight_dropout (DropConnect)
    y_t = m_b ⊙ x_t / (1 - p)  for every t                locked_dropout (one mask per sequence)
    E'_v = m_v E_v / (1 - p_e)                            token_dropout (whole embedding rows)
    AR  = α · mean_t ||m ⊙ h_t||²                          ar, on the last layer's dropped outputs
    TAR = β · mean_t ||h_t - h_{t-1}||²                    tar, on its outputs before dropout

The layers do the first two (``RecurrentConfig.weight_dropout``/``locked_dropout``), the
embedding the third (``elman.nn.embedding_dropout``); ``penalty`` is the last two.
``awd_preset`` gives the paper's Penn Treebank values as a preset (``--preset awd``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import Tensor, nn

from elman.fields import option
from elman.nn import LockedDropout, Recurrent, build_recurrent
from elman.nn.checks import check_fields


@dataclass(frozen=True, kw_only=True)
class Regularizers:
    """A mixin for task configs: the AWD-LSTM regularisers, all off by default."""

    weight_dropout: float = option(
        0.0, "DropConnect rate on the recurrent hidden-to-hidden weights (AWD-LSTM), in [0, 1)"
    )
    locked_dropout: bool = option(
        False,
        "every dropout on sequences draws one mask per sequence, shared by every step "
        "(variational/locked dropout)",
    )
    token_dropout: float = option(
        0.0, "share of the vocabulary whose embedding is zeroed per batch (whole tokens)"
    )
    ar: float = option(
        0.0, "activation regularisation: ar * mean(h_t^2) of the last layer's dropped outputs"
    )
    tar: float = option(
        0.0, "temporal activation regularisation: tar * mean((h_t - h_t-1)^2) before dropout"
    )

    def __post_init__(self) -> None:
        check_fields(self, rates=("weight_dropout", "token_dropout"), flags=("locked_dropout",))
        for name in ("ar", "tar"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


# Merity et al. 2017, section 5 (Penn Treebank): dropout on the word vectors 0.4, between the
# LSTM layers 0.3 (a single rate here: ``dropout`` is also the between-layer rate), on the
# last layer's output 0.4, embedding dropout 0.1, weight dropout 0.5; AR α = 2, TAR β = 1;
# NT-ASGD from lr 30 with gradient clipping 0.25 and weight decay 1.2e-6.
AWD_MODEL = {
    "embed_dropout": 0.4,
    "dropout": 0.4,
    "token_dropout": 0.1,
    "weight_dropout": 0.5,
    "locked_dropout": True,
    "ar": 2.0,
    "tar": 1.0,
}
AWD_TRAIN = {"optimizer": "nt-asgd", "lr": 30.0, "clip_norm": 0.25, "weight_decay": 1.2e-6}


def awd_preset(config: type, training: bool = True) -> dict[str, dict[str, object]]:
    """``{"awd": values}`` for a task config class: the AWD values of the fields it has, and
    with ``training`` the paper's optimiser too (language models; a classifier or tagger
    keeps its own)."""
    names = config.__dataclass_fields__
    model = {k: v for k, v in AWD_MODEL.items() if k in names}
    return {"awd": model | (AWD_TRAIN if training else {})}


def recurrent(
    r: Regularizers, cell: str, size: int, hidden: int, layers: int, dropout: float, **kwargs
) -> Recurrent:
    """``build_recurrent`` with ``r``'s weight and locked dropout (``dropout`` acts between
    stacked layers only, so a single layer gets none)."""
    between = dropout if layers > 1 else 0.0
    return build_recurrent(
        cell,
        size,
        hidden,
        layers,
        between,
        weight_dropout=r.weight_dropout,
        locked_dropout=r.locked_dropout,
        **kwargs,
    )


def sequence_dropout(p: float, locked: bool) -> nn.Module:
    """Dropout on batch-first sequences (B, T, F): one mask per sequence when ``locked``."""
    return LockedDropout(p, batch_first=True) if locked else nn.Dropout(p)


def penalty(dropped: Tensor, raw: Tensor, ar: float, tar: float, mask: Tensor | None = None):
    """α·mean(dropped²) + β·mean((raw_t - raw_{t-1})²) over batch-first (B, T, F) outputs,
    the means over real steps only when ``mask`` (B, T) marks them; zero when both are off."""
    total = dropped.new_zeros(())
    m = None if mask is None else mask.to(dropped.dtype).unsqueeze(-1)  # (B, T, 1)
    if ar:
        sq = dropped.square()
        total = total + ar * (sq.mean() if m is None else (sq * m).sum() / (m.sum() * sq.shape[-1]))
    if tar and raw.shape[1] > 1:
        sq = (raw[:, 1:] - raw[:, :-1]).square()
        if m is None:
            total = total + tar * sq.mean()
        else:
            both = m[:, 1:] * m[:, :-1]  # pairs of real steps
            total = total + tar * (sq * both).sum() / (both.sum() * sq.shape[-1]).clamp(min=1)
    return total


def regularizers_of(config: Regularizers) -> Regularizers:
    """The ``Regularizers`` fields of a task config that mixes them in."""
    return Regularizers(**{f.name: getattr(config, f.name) for f in fields(Regularizers)})
