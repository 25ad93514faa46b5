"""Pretrain once, fine-tune everywhere: a language-model run initialises another model
(Howard & Ruder 2018, ULMFiT), and the layer groups that discriminative learning rates and
gradual unfreezing act on (``TrainConfig.discriminative``, ``unfreeze_every``).

What is copied, by value: the embedding rows of every token both vocabularies share (a word
LM's tokenizer is taken over whole, so all of them; a character LM's characters map one by
one; with two LMs, the forward one's rows, as the receiving model has one embedding), and
the recurrent encoder's bottom ``layers`` layers, a forward LM into the forward
direction and a backward LM (trained with ``reverse``) into the reverse one. The receiving
model must have the LM's cell, sizes and at most its layers; ``architecture`` gives them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from elman.data.tokenize import PAD_ID, SPECIALS, Tokenizer
from elman.nn import Recurrent

LOW_COVERAGE = 0.5  # a vocabulary mapping fewer of the training tokens than this "does not map"


@dataclass(frozen=True)
class Pretrained:
    """What a language-model run lends (``Run.pretrained``): the token of each embedding
    row, its tokenizer (a word LM's; None for characters), the embedding matrix (V, E), the
    recurrent layer and the direction it read, and where it came from."""

    tokens: tuple[str, ...]
    tokenizer: Tokenizer | None
    embedding: Tensor
    rnn: Recurrent
    cell: str
    backward: bool
    source: dict

    @property
    def sizes(self) -> dict[str, Any]:
        c = self.rnn.config
        return {
            "cell": self.cell,
            "embedding": self.embedding.shape[1],
            "hidden": c.hidden_size,
            "layers": c.num_layers,
        }


def weights_digest(tensors: dict[str, Tensor]) -> str:
    """A sha256 of named tensors' values: which weights an initialisation copied."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_pretrained(paths: list[str | Path]) -> list[Pretrained]:
    """The LM runs in ``paths``: one (a forward or a backward LM) or two (one of each, the
    same vocabulary and sizes); anything else is refused with the reason."""
    from elman.tasks.registry import load_run  # the registry imports every task package

    if not 1 <= len(paths) <= 2:
        raise ValueError(f"--init-from: expected one or two LM runs, got {len(paths)}")
    lms = [load_run(p).pretrained() for p in paths]
    if len(lms) == 2:
        a, b = lms
        if a.backward == b.backward:
            way = "backward" if a.backward else "forward"
            raise ValueError(
                f"--init-from: two LMs must be one forward and one backward (train one with "
                f"--reverse); both {paths[0]} and {paths[1]} read {way}"
            )
        if a.tokens != b.tokens or a.sizes != b.sizes:
            raise ValueError(
                "--init-from: the forward and backward LMs must share a vocabulary and sizes; "
                f"got {a.sizes} ({len(a.tokens)} tokens) and {b.sizes} ({len(b.tokens)} tokens)"
            )
        lms.sort(key=lambda lm: lm.backward)
    return lms


def architecture(lms: list[Pretrained]) -> dict[str, Any]:
    """The receiving model's fields the LMs decide: cell, sizes, layers, direction(s), and
    the tokenizer kind and case (``ClassifyConfig`` names)."""
    first = lms[0]
    tok = first.tokenizer
    return first.sizes | {
        "bidirectional": len(lms) == 2,
        "tokenizer": "char" if tok is None else tok.kind,
        "lower": False if tok is None else tok.lower,
    }


def tokenizer_of(lm: Pretrained) -> Tokenizer:
    """The receiving model's tokenizer: a word LM's own; for a character LM, a character
    tokenizer whose tokens after the specials are the LM's characters."""
    if lm.tokenizer is not None:
        return lm.tokenizer
    return Tokenizer("char", (*SPECIALS, *(t for t in lm.tokens if t not in SPECIALS)))


def check_coverage(known: float, vocabulary: int, where: str) -> float:
    """``known``: the share of the ``where`` tokens the LM's vocabulary (``vocabulary``
    tokens) has; too low is an error, since most of them would start from nothing."""
    if known < LOW_COVERAGE:
        raise ValueError(
            f"--init-from: the LM's vocabulary does not map the {where}: it knows only "
            f"{known:.0%} of their tokens (a vocabulary of {vocabulary}); pretrain on text "
            "like them, or with the same tokenizer"
        )
    return known


def check_fits(fields: dict[str, Any], lms: list[Pretrained]) -> None:
    """The receiving model's ``fields`` (``architecture``'s names) must fit the LMs: every
    reason they do not, in one error."""
    theirs = architecture(lms)
    wrong = [
        f"{k} {fields[k]!r} (the LM's is {theirs[k]!r})"
        for k in ("cell", "embedding", "hidden", "tokenizer", "lower")
        if k in fields and fields[k] != theirs[k]
    ]
    if fields["layers"] > theirs["layers"]:
        wrong.append(f"layers {fields['layers']} (the LM has {theirs['layers']})")
    if fields["bidirectional"] and len(lms) != 2:
        wrong.append(
            "a bidirectional encoder needs a forward and a backward LM (--init-from FWD BWD, "
            "the second trained with --reverse), or --no-bidirectional"
        )
    if not fields["bidirectional"] and (len(lms) != 1 or lms[0].backward):
        wrong.append("a unidirectional encoder reads forwards: give it one forward LM")
    if fields["bidirectional"] and fields["layers"] > 1:
        wrong.append(
            "a bidirectional encoder's layers above the first read both directions, which no "
            "unidirectional LM layer does: use --layers 1 or --no-bidirectional"
        )
    if wrong:
        raise ValueError("--init-from: the model does not fit the LM: " + "; ".join(wrong))


def copy_embedding(embed: nn.Embedding, tokens: tuple[str, ...], lm: Pretrained) -> int:
    """Rows of ``embed`` (whose ids are ``tokens``) set to the LM's row of the same token;
    rows the LM lacks get the mean LM row (padding stays zero). Returns the rows copied."""
    rows = {t: i for i, t in enumerate(lm.tokens)}
    mean = lm.embedding.mean(0)
    copied = 0
    with torch.no_grad():
        for i, token in enumerate(tokens):
            if i == PAD_ID and embed.padding_idx == PAD_ID:
                continue
            j = rows.get(token)
            embed.weight[i] = mean if j is None else lm.embedding[j]
            copied += j is not None
    return copied


def copy_encoder(rnn: Recurrent, lms: list[Pretrained]) -> list[str]:
    """The bottom layers of ``rnn`` set to the LMs' (a backward LM's into the reverse
    direction); returns the parameter names copied."""
    names = []
    own = dict(rnn.named_parameters())
    with torch.no_grad():
        for lm in lms:
            for name, value in lm.rnn.named_parameters():
                layer = int(re.search(r"_l(\d+)$", name).group(1))  # type: ignore[union-attr]
                if layer >= rnn.config.num_layers:
                    continue
                target = name + ("_reverse" if lm.backward else "")
                own[target].copy_(value)
                names.append(target)
    return names


def provenance(lms: list[Pretrained], rows: int, layers: list[str]) -> dict:
    """What a checkpoint records of its initialisation."""
    return {
        "runs": [lm.source for lm in lms],
        "embedding_rows": rows,
        "recurrent": layers,
    }


def layer_groups(model: nn.Module, bottom: tuple[str, ...], rnn: str) -> list[list[nn.Parameter]]:
    """ULMFiT's layer groups, bottom to top: the ``bottom`` submodules (the embedding), each
    layer of the recurrent submodule ``rnn`` (both directions), then everything else. A
    parameter shared by two modules (a tied output layer) is in the first group only."""
    seen: set[int] = set()

    def take(params) -> list[nn.Parameter]:
        out = [p for p in params if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in out)
        return out

    groups = [take(getattr(model, name).parameters()) for name in bottom if getattr(model, name)]
    recurrent: Recurrent = getattr(model, rnn)
    for layer in range(recurrent.config.num_layers):
        pattern = re.compile(rf"_l{layer}(_reverse)?$")
        groups.append(take(p for n, p in recurrent.named_parameters() if pattern.search(n)))
    groups.append(take(model.parameters()))
    return [g for g in groups if g]
