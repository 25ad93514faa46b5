"""Property tests over random shapes and lengths (hypothesis)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from elman import nn as enn

KINDS = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU", "LN_LSTM", "LN_GRU"]


def _layer(kind, size, hidden, layers, bi, bf, backend):
    kw = dict(num_layers=layers, bidirectional=bi, batch_first=bf, backend=backend)
    if kind.startswith("RNN"):
        return enn.RNN(size, hidden, nonlinearity=kind[4:].lower(), **kw)
    cls = enn.LSTM if kind.endswith("LSTM") else enn.GRU
    return cls(size, hidden, layer_norm=kind.startswith("LN"), **kw)


@st.composite
def configs(draw):
    batch, steps = draw(st.integers(1, 4)), draw(st.integers(1, 7))
    return dict(
        kind=draw(st.sampled_from(KINDS)),
        batch=batch,
        steps=steps,
        size=draw(st.integers(1, 5)),
        hidden=draw(st.integers(1, 5)),
        layers=draw(st.integers(1, 3)),
        bi=draw(st.booleans()),
        bf=draw(st.booleans()),
        lengths=draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch)),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=60, deadline=None)
@given(configs())
def test_shapes_padding_and_paths_agree(c):
    torch.manual_seed(c["seed"])
    layer = _layer(c["kind"], c["size"], c["hidden"], c["layers"], c["bi"], c["bf"], "auto")
    layer = layer.double()
    reference = _layer(
        c["kind"], c["size"], c["hidden"], c["layers"], c["bi"], c["bf"], "reference"
    ).double()
    reference.load_state_dict(layer.state_dict())
    b, t = c["batch"], c["steps"]
    x = torch.randn((b, t, c["size"]) if c["bf"] else (t, b, c["size"]), dtype=torch.float64)
    lengths = torch.tensor(c["lengths"])
    out, state = layer(x, lengths=lengths)
    d = 2 if c["bi"] else 1
    assert out.shape == ((b, t, d * c["hidden"]) if c["bf"] else (t, b, d * c["hidden"]))
    states = state if isinstance(state, tuple) else (state,)
    assert all(s.shape == (d * c["layers"], b, c["hidden"]) for s in states)
    past_end = torch.arange(t)[None, :] >= lengths[:, None]  # (B, T)
    out_bt = out if c["bf"] else out.transpose(0, 1)
    assert (out_bt[past_end] == 0).all()
    # junk in the padding changes nothing
    junk = x.clone()
    (junk if c["bf"] else junk.transpose(0, 1))[past_end] = 1e6
    out2, state2 = layer(junk, lengths=lengths)
    torch.testing.assert_close(out2, out)
    for s, s2 in zip(states, state2 if isinstance(state2, tuple) else (state2,), strict=True):
        torch.testing.assert_close(s2, s)
    # the fused path (where it runs) and the reference loop agree
    out3, state3 = reference(x, lengths=lengths)
    torch.testing.assert_close(out3, out)
    for s, s3 in zip(states, state3 if isinstance(state3, tuple) else (state3,), strict=True):
        torch.testing.assert_close(s3, s)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(KINDS), st.integers(1, 3), st.integers(1, 6), st.integers(0, 2**16))
def test_unbatched_equals_batch_of_one(kind, size, steps, seed):
    torch.manual_seed(seed)
    layer = _layer(kind, size, 3, 2, True, False, "auto").double()
    x = torch.randn(steps, size, dtype=torch.float64)
    out, state = layer(x)
    out_b, state_b = layer(x.unsqueeze(1))
    torch.testing.assert_close(out, out_b.squeeze(1))
    for s, sb in zip(
        state if isinstance(state, tuple) else (state,),
        state_b if isinstance(state_b, tuple) else (state_b,),
        strict=True,
    ):
        torch.testing.assert_close(s, sb.squeeze(1))
