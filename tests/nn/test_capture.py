"""return_all_states: every layer's hidden (and cell) states at every timestep."""

from __future__ import annotations

import pytest
import torch

from elman import nn as enn


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_captured_states_agree_with_outputs_and_final_states(batch_first, bidirectional):
    torch.manual_seed(0)
    layer = enn.LSTM(3, 4, 2, batch_first=batch_first, bidirectional=bidirectional)
    x = torch.randn(2, 6, 3) if batch_first else torch.randn(6, 2, 3)
    out, (h_n, c_n), states = layer(x, return_all_states=True)
    d = 2 if bidirectional else 1
    time_axis = 3 if batch_first else 2
    assert states.h.shape[:2] == (2, d) and states.h.shape[time_axis] == 6
    assert states.c is not None and states.c.shape == states.h.shape
    last = torch.cat(list(states.h[-1]), dim=-1)  # last layer, directions concatenated
    torch.testing.assert_close(last, out)
    final_fwd = states.h[:, 0].select(time_axis - 1, 5)  # forward ends at t = T-1
    torch.testing.assert_close(final_fwd, h_n[0::d])
    torch.testing.assert_close(states.c[:, 0].select(time_axis - 1, 5), c_n[0::d])
    if bidirectional:  # the reverse direction ends at t = 0
        torch.testing.assert_close(states.h[:, 1].select(time_axis - 1, 0), h_n[1::2])


def test_capture_matches_native_outputs_and_is_zero_on_padding():
    torch.manual_seed(0)
    layer = enn.GRU(3, 4, 2)
    x = torch.randn(5, 2, 3)
    native_out, _ = layer(x, lengths=[5, 3])
    out, _, states = layer(x, lengths=[5, 3], return_all_states=True)
    torch.testing.assert_close(out, native_out)
    assert states.c is None
    assert (states.h[:, :, 3:, 1] == 0).all()
    # layer 0's captured outputs are layer 1's inputs
    second = enn.GRU(4, 4)
    second.load_state_dict(
        {k.replace("_l1", "_l0"): v for k, v in layer.state_dict().items() if "_l1" in k}
    )
    torch.testing.assert_close(second(states.h[0, 0], lengths=[5, 3])[0], out)


def test_capture_works_for_layer_norm_and_residual():
    layer = enn.LayerNormLSTM(4, 4, 3, residual=True)
    out, _, states = layer(torch.randn(3, 2, 4), return_all_states=True)
    assert states.h.shape == (3, 1, 3, 2, 4)
    # residuals from layer 1 on: y0 = h0, y1 = h1 + y0, y2 = h2 + y1 = h0 + h1 + h2
    torch.testing.assert_close(out, states.h[:, 0].sum(0))


@pytest.mark.parametrize("batch_first", [False, True])
def test_capture_of_unbatched_input_has_no_batch_axis(batch_first):
    layer = enn.LSTM(3, 4, 2, batch_first=batch_first)
    out, _, states = layer(torch.randn(6, 3), return_all_states=True)
    assert states.h.shape == states.c.shape == (2, 1, 6, 4)
    torch.testing.assert_close(states.h[-1, 0], out)
