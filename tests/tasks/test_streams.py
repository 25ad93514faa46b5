"""Streams: chunks equal the whole run, state survives bytes, batched streams equal lone ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from elman.tasks.lm.model import RecurrentLM
from elman.tasks.lm.stream import Stream
from elman.tasks.music.task import MusicConfig, MusicModel


def _lm(cell: str, layers: int = 2) -> RecurrentLM:
    torch.manual_seed(0)
    return RecurrentLM(11, cell, 6, 8, layers).double().eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "ln-lstm"])
def test_chunks_equal_the_whole_run(cell):
    model, ids = _lm(cell), torch.randint(0, 11, (12,))
    whole = F.log_softmax(model(ids[None])[0][0], dim=-1)
    stream = Stream(model)
    parts = [stream.feed(ids[a:b]) for a, b in ((0, 3), (3, 4), (4, 9), (9, 12))]
    torch.testing.assert_close(torch.cat(parts), whole)
    assert stream.steps == 12


def test_state_survives_bytes():
    model, ids = _lm("lstm"), torch.randint(0, 11, (10,))
    first = Stream(model)
    first.feed(ids[:6])
    again = Stream.from_bytes(model, first.to_bytes())
    assert again.steps == 6
    torch.testing.assert_close(again.feed(ids[6:]), first.feed(ids[6:]))
    with pytest.raises(ValueError, match=r"state\.0: expected shape"):
        Stream.from_bytes(_lm("lstm", layers=1), first.to_bytes())


def test_streams_stepped_together_equal_streams_alone():
    model = _lm("gru")
    histories = [torch.randint(0, 11, (n,)) for n in (0, 3, 7)]
    together, alone = [Stream(model) for _ in histories], [Stream(model) for _ in histories]
    for s, t, h in zip(together, alone, histories, strict=True):
        if len(h):
            s.feed(h)
            t.feed(h)
    nxt = [torch.randint(0, 11, (2,)) for _ in histories]
    got = Stream.feed_together(together, nxt)
    for g, t, x in zip(got, alone, nxt, strict=True):
        torch.testing.assert_close(g, t.feed(x))
    for s, t in zip(together, alone, strict=True):
        torch.testing.assert_close(s.state, t.state)
    with pytest.raises(ValueError, match="share one shape"):
        Stream.feed_together(together[:2], [torch.tensor([1]), torch.tensor([1, 2])])


def test_piano_roll_stream_gives_per_pitch_log_probabilities():
    torch.manual_seed(1)
    model = MusicModel(MusicConfig(hidden=8), 5).double().eval()
    frames = (torch.rand(9, 5) < 0.3).double()
    whole = F.logsigmoid(model(frames[None])[0][0])
    stream = Stream(model, sigmoid=True)
    torch.testing.assert_close(torch.cat([stream.feed(frames[:4]), stream.feed(frames[4:])]), whole)
    again = Stream.from_bytes(model, stream.to_bytes(), sigmoid=True)
    longer = F.logsigmoid(model(torch.cat([frames, frames[:2]])[None])[0][0])
    torch.testing.assert_close(again.feed(frames[:2]), longer[9:])


def test_log_softmax_unless_told_the_outputs_are_per_pitch():
    torch.manual_seed(1)
    model = MusicModel(MusicConfig(hidden=8), 5).double().eval()
    frames = (torch.rand(4, 5) < 0.3).double()
    out = model(frames[None])[0][0]
    torch.testing.assert_close(Stream(model).feed(frames), F.log_softmax(out, dim=-1))
    with pytest.raises(TypeError, match="sigmoid: expected True or False"):
        Stream(model, sigmoid="yes")


def test_models_that_cannot_stream_are_refused():
    model = RecurrentLM(5, "lstm", 4, 4, 1)
    model.rnn = type(model.rnn)(4, 4, bidirectional=True, batch_first=True)
    with pytest.raises(ValueError, match="bidirectional"):
        Stream(model)
    with pytest.raises(TypeError, match="recurrent layer"):
        Stream(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="chunk"):
        Stream(_lm("gru")).feed([])
