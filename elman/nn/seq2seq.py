r"""Encoder-decoder with attention (Sutskever et al. 2014; Bahdanau et al. 2014; Luong et al.
2015), for any source and target vocabularies.

    m_1..m_S   = BiRNN(E_src x_1..x_S)                          memory (B, S, E), E = D*H
    s_0        = tanh(W_b [h→_S ; h←_1])  per layer              bridge (zeros without it)
    s_t        = RNN(s_{t-1}, [E_tgt y_{t-1} ; h̃_{t-1}])        decoder (h̃ fed only with
                                                                 input feeding)
    α_t        = softmax_j score(s_t, m_j)  over real positions  additive, dot or general
    c_t        = Σ_j α_tj m_j
    h̃_t        = tanh(W_c [c_t ; s_t])                           attentional state (s_t
                                                                 without attention)
    p(y_t|...) = softmax(W_o h̃_t)

Attention follows Luong's order (attend with s_t after the step) for every score function,
so "additive" is Bahdanau's score (Luong's "concat") in that order. The decoder is as wide
as the memory (E), so dot scores need no projection and the bridge maps each layer's final
encoder state (both directions concatenated) straight to the decoder's.

Training is teacher-forced. Without input feeding or scheduled sampling the decoder runs as
one layer call over all steps and attends for all steps at once (the fast path); otherwise it
steps. Scheduled sampling (Bengio et al. 2015) feeds, per position, a token sampled from the
model's own previous prediction instead of the reference with probability ``sample_rate``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.nn.attention import AdditiveAttention, Attention, DotAttention, GeneralAttention
from elman.nn.layers import build_recurrent

ATTENTIONS = ("none", "additive", "dot", "general")
PAD_ID = 0  # padding in both vocabularies: never embedded into the result, never a target


def build_attention(kind: str, size: int) -> Attention | None:
    """The score function ``kind`` (``ATTENTIONS``) for queries and keys of ``size``."""
    if kind == "none":
        return None
    if kind == "additive":
        return AdditiveAttention(size, size)
    if kind == "dot":
        return DotAttention()
    if kind == "general":
        return GeneralAttention(size, size)
    raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}; got {kind!r}")


class DecodeState(NamedTuple):
    """Everything one decoding step needs, every tensor batch-first so beams can reorder it.

    memory (N, S, E), mask (N, S), hidden (N, L, E) [and cell (N, L, E) for LSTMs], feed
    (N, E): the previous attentional state h̃ (zeros before the first step)."""

    memory: Tensor
    mask: Tensor
    hidden: Tensor
    cell: Tensor | None
    feed: Tensor


class Seq2Seq(nn.Module):
    """Source ids (B, S) with lengths -> target logits; see the module docstring."""

    def __init__(
        self,
        source_vocab: int,
        target_vocab: int,
        cell: str = "lstm",
        embedding: int = 128,
        hidden: int = 256,
        layers: int = 1,
        bidirectional: bool = True,
        attention: str = "general",
        input_feeding: bool = False,
        bridge: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        directions = 2 if bidirectional else 1
        size = hidden * directions
        self.layers, self.size = layers, size
        self.input_feeding = input_feeding
        self.source_embed = nn.Embedding(source_vocab, embedding, PAD_ID)
        self.target_embed = nn.Embedding(target_vocab, embedding, PAD_ID)
        self.drop = nn.Dropout(dropout)
        between = dropout if layers > 1 else 0.0
        self.encoder = build_recurrent(
            cell, embedding, hidden, layers, between, bidirectional=bidirectional
        )
        feed = size if input_feeding else 0
        self.decoder = build_recurrent(cell, embedding + feed, size, layers, between)
        self.lstm = self.decoder.config.mode == "LSTM"
        self.bridge_h = nn.Linear(size, size) if bridge else None
        self.bridge_c = nn.Linear(size, size) if bridge and self.lstm else None
        self.attention = build_attention(attention, size)
        self.combine = nn.Linear(2 * size, size) if self.attention is not None else None
        self.out = nn.Linear(size, target_vocab)

    # ---- encoder and bridge ------------------------------------------------------------
    def encode(self, source: Tensor, lengths: Tensor) -> DecodeState:
        """Run the encoder over ``source`` (B, S) ids and build the decoder's first state."""
        memory, final = self.encoder(self.drop(self.source_embed(source)), lengths=lengths)
        finals = final if isinstance(final, tuple) else (final,)
        mask = torch.arange(source.shape[1], device=source.device)[None, :] < lengths[:, None]
        b = source.shape[0]
        hidden = self._bridge(finals[0], self.bridge_h, torch.tanh, b)
        cell = self._bridge(finals[1], self.bridge_c, lambda x: x, b) if self.lstm else None
        feed = memory.new_zeros(b, self.size)
        return DecodeState(memory, mask, hidden, cell, feed)

    def _bridge(self, final: Tensor, linear: nn.Linear | None, act, batch: int) -> Tensor:
        """(L*D, B, H) final encoder states -> (B, L, E) decoder states."""
        if linear is None:
            return final.new_zeros(batch, self.layers, self.size)
        per_layer = final.view(self.layers, -1, batch, final.shape[-1])  # (L, D, B, H)
        joined = per_layer.permute(2, 0, 1, 3).reshape(batch, self.layers, self.size)
        return act(linear(joined))

    # ---- one decoder step --------------------------------------------------------------
    def attend(self, s: Tensor, state: DecodeState) -> tuple[Tensor, Tensor | None]:
        """h̃ and the attention weights for decoder outputs ``s`` (B, E) or (B, T, E)."""
        if self.attention is None:
            return s, None
        context, weights = self.attention(s, state.memory, mask=state.mask)
        return torch.tanh(self.combine(torch.cat([context, s], dim=-1))), weights

    def step(self, tokens: Tensor, state: DecodeState) -> tuple[Tensor, DecodeState, Tensor | None]:
        """Logits (N, V) for the next token after ``tokens`` (N,), the new state, and the
        attention weights (N, S) (None without attention)."""
        x = self.drop(self.target_embed(tokens))
        if self.input_feeding:
            x = torch.cat([x, state.feed], dim=-1)
        rnn_state = (state.hidden.transpose(0, 1),)
        if state.cell is not None:
            rnn_state += (state.cell.transpose(0, 1),)
        s, new = self.decoder.step(x, rnn_state)
        h_tilde, weights = self.attend(s, state)
        cell = new[1].transpose(0, 1) if state.cell is not None else None
        state = state._replace(hidden=new[0].transpose(0, 1), cell=cell, feed=h_tilde)
        return self.out(self.drop(h_tilde)), state, weights

    # ---- teacher forcing ---------------------------------------------------------------
    def forward(
        self, source: Tensor, lengths: Tensor, target_in: Tensor, sample_rate: float = 0.0
    ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, V) for teacher-forced ``target_in`` (B, T) (starting with the start
        token), and attention weights (B, T, S) or None."""
        state = self.encode(source, lengths)
        if not self.input_feeding and sample_rate == 0:
            return self._parallel(target_in, state)
        logits, weights, previous = [], [], None
        for t, tokens in enumerate(target_in.unbind(1)):
            if t > 0 and sample_rate > 0:
                tokens = _mix(tokens, previous, sample_rate)
            z, state, w = self.step(tokens, state)
            logits.append(z)
            weights.append(w)
            previous = z
        stacked = None if weights[0] is None else torch.stack(weights, dim=1)
        return torch.stack(logits, dim=1), stacked

    def _parallel(self, target_in: Tensor, state: DecodeState) -> tuple[Tensor, Tensor | None]:
        hx = state.hidden.transpose(0, 1).contiguous()
        if state.cell is not None:
            hx = (hx, state.cell.transpose(0, 1).contiguous())
        s, _ = self.decoder(self.drop(self.target_embed(target_in)), hx)  # (B, T, E)
        h_tilde, weights = self.attend(s, state)
        return self.out(self.drop(h_tilde)), weights


def _mix(reference: Tensor, logits: Tensor, rate: float) -> Tensor:
    """Scheduled sampling: each position takes a token sampled from ``logits`` with
    probability ``rate``, else the reference token; padding stays padding."""
    with torch.no_grad():
        sampled = torch.multinomial(F.softmax(logits.float(), dim=-1), 1).squeeze(-1)
        use = (torch.rand(reference.shape, device=reference.device) < rate) & (reference != PAD_ID)
    return torch.where(use, sampled, reference)


def select(state: DecodeState, index: Tensor) -> DecodeState:
    """The rows ``index`` of every tensor in ``state`` (beam reordering and expansion)."""
    return DecodeState(*(None if t is None else t.index_select(0, index) for t in state))


__all__ = ["ATTENTIONS", "DecodeState", "Seq2Seq", "build_attention", "select"]
