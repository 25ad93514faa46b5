"""Decoder streams: next-token log-probabilities equal the teacher-forced run, the state
(memory, mask, decoder state, h̃) survives bytes, and streams on sources of different
lengths stepped together equal streams alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from elman.data.tokenize import EOS_ID
from elman.nn.seq2seq import Seq2Seq
from elman.tasks.seq2seq.stream import DecoderStream
from elman.tasks.streams import feed_together

SOURCE_VOCAB, TARGET_VOCAB = 7, 8


def _model(cell: str = "lstm", attention: str = "general", feeding: bool = False, **kw):
    torch.manual_seed(0)
    model = Seq2Seq(SOURCE_VOCAB, TARGET_VOCAB, cell, 4, 3, 2, True, attention, feeding, **kw)
    return model.double().eval()


def _ids(n: int, vocab: int, seed: int) -> torch.Tensor:
    return torch.randint(3, vocab, (n,), generator=torch.Generator().manual_seed(seed))


def _target(n: int, seed: int) -> torch.Tensor:
    return torch.cat([torch.tensor([EOS_ID]), _ids(n - 1, TARGET_VOCAB, seed)])


@torch.no_grad()
def _teacher_forced(model: Seq2Seq, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    logits, _ = model(source[None], torch.tensor([len(source)]), target[None])
    return F.log_softmax(logits[0], dim=-1)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize(
    ("attention", "feeding", "bridge"),
    [
        ("general", False, True),
        ("additive", True, True),
        ("dot", False, False),
        ("none", True, True),
    ],
)
def test_stream_equals_teacher_forcing_and_survives_bytes(cell, attention, feeding, bridge):
    model = _model(cell, attention, feeding, bridge=bridge)
    source, target = _ids(5, SOURCE_VOCAB, 0), _target(7, 1)
    stream = DecoderStream(model, source)
    parts = [stream.feed(target[:1]), stream.feed(target[1:4])]
    stream = DecoderStream.from_bytes(model, stream.to_bytes())
    assert stream.steps == 4
    parts.append(stream.feed(target[4:]))
    torch.testing.assert_close(torch.cat(parts), _teacher_forced(model, source, target))


@pytest.mark.parametrize(("cell", "attention"), [("lstm", "additive"), ("gru", "general")])
def test_streams_on_sources_of_different_lengths_stepped_together(cell, attention):
    model = _model(cell, attention, feeding=True)
    sources = [_ids(n, SOURCE_VOCAB, n) for n in (2, 6, 4)]
    histories = [_target(n, 10 + n) for n in (1, 4, 2)]
    together = [DecoderStream(model, s) for s in sources]
    alone = [DecoderStream(model, s) for s in sources]
    for s, t, h in zip(together, alone, histories, strict=True):
        s.feed(h)
        t.feed(h)
    chunks = [_ids(3, TARGET_VOCAB, 20 + i) for i in range(3)]
    got = feed_together(together, chunks)
    for g, t, x in zip(got, alone, chunks, strict=True):
        torch.testing.assert_close(g, t.feed(x))
    for s, t, src in zip(together, alone, sources, strict=True):
        assert s.state.memory.shape[1] == len(src)  # each keeps its own memory, unpadded
        for a, b in zip(s.state, t.state, strict=True):
            torch.testing.assert_close(a, b)
    whole = _teacher_forced(model, sources[1], torch.cat([histories[1], chunks[1]]))
    torch.testing.assert_close(got[1], whole[4:])


def test_decoder_streams_refuse_bad_input():
    model = _model()
    with pytest.raises(ValueError, match=r"source: token ids must lie in \[0, 7\)"):
        DecoderStream(model, [1, 7])
    with pytest.raises(ValueError, match="source: expected"):
        DecoderStream(model, [])
    stream = DecoderStream(model, [3, 4])
    with pytest.raises(ValueError, match=r"chunks\[0\]: token ids must lie in \[0, 8\)"):
        stream.feed([8])
    with pytest.raises(TypeError, match="expected a Seq2Seq"):
        DecoderStream(torch.nn.Linear(2, 2), [1])  # type: ignore[arg-type]
    narrow = Seq2Seq(SOURCE_VOCAB, TARGET_VOCAB, "lstm", 4, 2, 2, True).double()
    with pytest.raises(ValueError, match=r"memory: expected shape \(1, S, 6\)"):
        DecoderStream.from_bytes(model, DecoderStream(narrow, [3]).to_bytes())
    gru = _model("gru")
    with pytest.raises(ValueError, match="cell: missing"):
        DecoderStream.from_bytes(model, DecoderStream(gru, [3]).to_bytes())
    with pytest.raises(ValueError, match="not the state of a decoder stream"):
        DecoderStream.from_bytes(model, b"\x00" * 12)
