"""Streaming decoding: an encoder-decoder opened on one source (encoded once) takes target
tokens a step or a chunk at a time and gives the next token's log-probabilities after each,
equal to the teacher-forced run over the whole target (``Seq2Seq.forward``).

The state is the decoder's ``DecodeState``: the encoder's memory and mask, the decoder's
hidden (and cell) state and the fed-back attentional state h̃. Streams of sources of
different lengths step together with their memories padded to the longest and the padding
masked, so attention never reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from elman.nn.seq2seq import DecodeState, Seq2Seq
from elman.tasks.streaming import check_lengths, check_together, pack, take, unpack

WHAT = "decoder stream"


def _ids(x, vocab: int, what: str) -> Tensor:
    """(T,) token ids in [0, vocab), at least one."""
    t = torch.as_tensor(x)
    if t.dim() != 1 or t.numel() == 0 or t.dtype.is_floating_point:
        raise ValueError(f"{what}: expected (steps,) token ids, got {t.dtype} {tuple(t.shape)}")
    if int(t.min()) < 0 or int(t.max()) >= vocab:
        raise ValueError(f"{what}: token ids must lie in [0, {vocab}), got {t.tolist()[:20]}")
    return t.long()


def _padded(parts: Sequence[Tensor], width: int, value) -> Tensor:
    """Rows (1, S_i, ...) padded along dim 1 to ``width`` with ``value``, as one batch."""
    out = []
    for p in parts:
        extra = width - p.shape[1]
        if extra:
            fill = p.new_full((1, extra, *p.shape[2:]), value)
            p = torch.cat([p, fill], dim=1)
        out.append(p)
    return torch.cat(out)


class DecoderStream:
    """The decoder of ``model`` on one ``source`` ((S,) source token ids), fed target tokens.

    Feed the start token first (``<eos>``, id ``elman.data.tokenize.EOS_ID``, in the tasks'
    vocabularies), then each target token: the result after a token is the distribution of
    the one after it."""

    def __init__(self, model: Seq2Seq, source: Tensor | Sequence[int]) -> None:
        if not isinstance(model, Seq2Seq):
            raise TypeError(f"model: expected a Seq2Seq, got {type(model).__name__}")
        self.model = model.eval()
        src = _ids(source, model.source_embed.num_embeddings, "source")
        with torch.no_grad():
            device = model.out.weight.device
            self.state: DecodeState = model.encode(
                src[None].to(device), torch.tensor([len(src)], device=device)
            )
        self.steps = 0

    @torch.no_grad()
    def feed(self, chunk: Tensor | Sequence[int]) -> Tensor:
        """Feed (T,) target token ids; returns (T, V) log-probabilities of the next token
        after each."""
        return DecoderStream.feed_together([self], [chunk])[0]

    @classmethod
    @torch.no_grad()
    def feed_together(
        cls, streams: Sequence[DecoderStream], chunks: Sequence[Tensor | Sequence[int]]
    ) -> list[Tensor]:
        """Feed one chunk to each stream (chunks of one length, streams of one model) through
        one batched decoder; sources may differ in length."""
        check_together(streams, chunks)
        model = streams[0].model.eval()
        vocab = model.target_embed.num_embeddings
        rows = [_ids(c, vocab, f"chunks[{i}]") for i, c in enumerate(chunks)]
        check_lengths(rows)
        tokens = torch.stack(rows).to(model.out.weight.device)
        state = _batch([s.state for s in streams])
        out = []
        for step in tokens.unbind(1):  # (B,)
            logits, state, _ = model.step(step, state)
            out.append(F.log_softmax(logits, dim=-1))
        for i, s in enumerate(streams):
            own = s.state
            cell = None if state.cell is None else state.cell[i : i + 1].contiguous()
            s.state = own._replace(
                hidden=state.hidden[i : i + 1].contiguous(),
                cell=cell,
                feed=state.feed[i : i + 1].contiguous(),
            )
            s.steps += tokens.shape[1]
        return list(torch.stack(out, dim=1).unbind(0))

    def to_bytes(self) -> bytes:
        """The encoder memory and mask, the decoder state and h̃, and the step count as
        safetensors bytes; ``from_bytes`` continues from them without the source."""
        tensors = {k: v for k, v in self.state._asdict().items() if v is not None}
        return pack(tensors | {"steps": torch.tensor(self.steps)})

    @classmethod
    def from_bytes(cls, model: Seq2Seq, data: bytes) -> DecoderStream:
        """A stream of ``model`` that continues where ``to_bytes`` left one."""
        if not isinstance(model, Seq2Seq):
            raise TypeError(f"model: expected a Seq2Seq, got {type(model).__name__}")
        tensors = unpack(data, WHAT)
        memory = take(tensors, "memory")
        if memory.dim() != 3 or memory.shape[0] != 1 or memory.shape[2] != model.size:
            raise ValueError(
                f"memory: expected shape (1, S, {model.size}), got {tuple(memory.shape)}"
            )
        dtype = model.out.weight.dtype
        inner = (1, model.layers, model.size)
        state = DecodeState(
            memory.to(dtype),
            take(tensors, "mask", tuple(memory.shape[:2])).bool(),
            take(tensors, "hidden", inner).to(dtype),
            take(tensors, "cell", inner).to(dtype) if model.lstm else None,
            take(tensors, "feed", (1, model.size)).to(dtype),
        )
        stream = cls.__new__(cls)
        stream.model, stream.state = model.eval(), state
        stream.steps = int(take(tensors, "steps", ()))
        return stream


def _batch(states: Sequence[DecodeState]) -> DecodeState:
    """One DecodeState of many streams' (batch 1 each), memories padded and masked."""
    width = max(s.memory.shape[1] for s in states)
    cells = [s.cell for s in states]
    return DecodeState(
        _padded([s.memory for s in states], width, 0.0),
        _padded([s.mask for s in states], width, False),
        torch.cat([s.hidden for s in states]),
        None if cells[0] is None else torch.cat(cells),  # type: ignore[arg-type]
        torch.cat([s.feed for s in states]),
    )


__all__ = ["DecoderStream"]
