"""The AWD-LSTM dropouts: weight dropout on W_hh (every path), locked and embedding dropout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from elman import nn as enn

P = 0.5
MAKERS = {
    "rnn": lambda **k: enn.RNN(3, 5, 2, bidirectional=True, **k),
    "lstm": lambda **k: enn.LSTM(3, 5, 2, bidirectional=True, **k),
    "gru": lambda **k: enn.GRU(3, 5, 2, bidirectional=True, **k),
}
BACKENDS = [
    "reference",
    "native",
    pytest.param("fused", marks=pytest.mark.kernels),
    "auto",
]


def _pair(kind: str, backend: str, p: float = P, dtype=torch.float64):
    """A weight-dropped layer and a plain twin holding the same weights."""
    torch.manual_seed(0)
    layer = MAKERS[kind](weight_dropout=p, backend=backend, dtype=dtype)
    plain = MAKERS[kind](backend=backend, dtype=dtype)
    plain.load_state_dict(layer.state_dict())
    return layer, plain


def _run(layer, x, seed=1):
    """Seeded training-mode call: outputs, final states and every parameter's gradient."""
    layer.zero_grad()
    torch.manual_seed(seed)
    out, state = layer(x)
    state = state if isinstance(state, tuple) else (state,)
    (out.square().sum() + sum(s.sum() for s in state)).backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    return out.detach(), tuple(s.detach() for s in state), grads


# --- weight dropout -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(MAKERS))
def test_weight_dropout_in_eval_is_the_plain_layer_exactly(kind, backend):
    layer, plain = _pair(kind, backend, dtype=torch.float32)
    layer.eval(), plain.eval()
    x = torch.randn(6, 3, 3)
    lengths = torch.tensor([6, 2, 4])
    for args in ((x,), (x, None, lengths)):
        got, want = layer(*args), plain(*args)
        assert torch.equal(got[0], want[0])
        first, second = layer(*args), layer(*args)  # deterministic
        assert torch.equal(first[0], second[0])


@pytest.mark.parametrize("kind", list(MAKERS))
def test_weight_dropout_blocks_neither_fast_path(kind):
    layer = MAKERS[kind](weight_dropout=P)
    assert layer.native_blockers() == []
    MAKERS[kind](weight_dropout=P, backend="native")  # forcing it does not raise


@pytest.mark.kernels
def test_weight_dropout_does_not_block_the_compiled_loop():
    assert enn.GRU(3, 4, weight_dropout=P).fused_blockers() == []
    assert enn.LayerNormLSTM(3, 4, weight_dropout=P).fused_blockers() == []
    assert enn.GRU(3, 4, weight_dropout=P).path(batch=8) == "fused"
    enn.LSTM(3, 4, weight_dropout=P, backend="fused")


def test_native_path_runs_the_fused_op_with_weight_dropout_in_training():
    layer = enn.LSTM(3, 4, weight_dropout=P, backend="native").train()
    with torch.autograd.profiler.profile() as prof:
        layer(torch.randn(5, 2, 3))[0].sum().backward()
    names = {e.name for e in prof.function_events}
    assert any("lstm" in n and "cell" not in n for n in names), names


@pytest.mark.parametrize("kind", list(MAKERS))
def test_training_paths_agree_given_the_same_seed(kind):
    """The masks are drawn once, before the path split, so every path sees the same W_hh'."""
    x = torch.randn(7, 3, 3, dtype=torch.float64)
    backends = ["reference", "native"]
    from elman.kernels import fused

    if fused.available():
        backends.append("fused")
    runs = {}
    for backend in backends:
        layer, _ = _pair(kind, backend)
        runs[backend] = _run(layer.train(), x)
    ref_out, ref_state, ref_grads = runs.pop("reference")
    for backend, (out, state, grads) in runs.items():
        torch.testing.assert_close(out, ref_out, msg=backend)
        torch.testing.assert_close(state, ref_state, msg=backend)
        for name, g in grads.items():
            torch.testing.assert_close(g, ref_grads[name], msg=f"{backend} {name}")


@pytest.mark.parametrize("backend", ["reference", "native", "auto"])
def test_one_mask_per_call_shared_by_every_step(backend):
    """The dropped layer equals a plain layer whose W_hh is the dropped matrix, at all steps."""
    torch.manual_seed(0)
    layer = enn.GRU(3, 6, weight_dropout=P, backend=backend, dtype=torch.float64).train()
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    torch.manual_seed(5)
    out = layer(x)[0]
    torch.manual_seed(5)
    dropped = F.dropout(layer.weight_hh_l0.detach(), P, training=True)  # the same draw
    assert (dropped == 0).any() and (dropped != 0).any()
    fixed = enn.GRU(3, 6, backend=backend, dtype=torch.float64).train()
    fixed.load_state_dict(layer.state_dict() | {"weight_hh_l0": dropped})
    torch.testing.assert_close(out, fixed(x)[0], rtol=0, atol=1e-12)


def test_stacked_bidirectional_masks_are_the_run_parameters_of_the_call():
    layer, _ = _pair("lstm", "reference")
    layer.train()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    torch.manual_seed(3)
    out = layer(x)[0]
    torch.manual_seed(3)
    params = layer.run_parameters()
    fixed = MAKERS["lstm"](backend="reference", dtype=torch.float64).train()
    for layer_index, directions in enumerate(params):
        for d, p in enumerate(directions):
            name = f"weight_hh_l{layer_index}" + ("_reverse" if d else "")
            assert not torch.equal(p["weight_hh"], getattr(layer, name))
            getattr(fixed, name).data.copy_(p["weight_hh"])
            for base in ("weight_ih", "bias_ih", "bias_hh"):
                getattr(fixed, name.replace("weight_hh", base)).data.copy_(p[base])
    torch.testing.assert_close(out, fixed(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rate_zero_is_the_plain_layer_in_training(backend):
    layer, plain = _pair("lstm", backend, p=0.0)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    got, want = _run(layer.train(), x), _run(plain.train(), x)
    assert torch.equal(got[0], want[0])
    for name, g in got[2].items():
        assert torch.equal(g, want[2][name])


@pytest.mark.parametrize("backend", BACKENDS)
def test_parameters_are_not_modified_and_get_gradients_through_the_mask(backend):
    layer, _ = _pair("gru", backend)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    _, _, grads = _run(layer.train(), x, seed=1)
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k]), k
    # d/dW_hh of W_hh' = m * W_hh / (1-p) is zero exactly where the mask dropped an entry
    torch.manual_seed(1)
    dropped = layer.run_parameters()[0][0]["weight_hh"]
    g = grads["weight_hh_l0"]
    assert torch.all(g[dropped == 0] == 0) and (g[dropped != 0] != 0).any()


def test_step_follows_the_same_rule_with_a_new_mask_per_call():
    torch.manual_seed(0)
    layer = enn.LSTM(3, 5, 2, weight_dropout=P, dtype=torch.float64)
    plain = enn.LSTM(3, 5, 2, dtype=torch.float64)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, dtype=torch.float64)
    state = plain.zero_state(2)
    state = (state[0] + 0.3, state[1] - 0.2)
    # eval: the plain step
    torch.testing.assert_close(layer.eval().step(x, state), plain.eval().step(x, state))
    # training: one draw per layer's W_hh at each call, in layer order
    layer.train()
    torch.manual_seed(4)
    got = layer.step(x, state)
    torch.manual_seed(4)
    names = ("weight_hh_l0", "weight_hh_l1")
    masked = {n: F.dropout(getattr(layer, n).detach(), P, True) for n in names}
    fixed = enn.LSTM(3, 5, 2, dtype=torch.float64).train()
    fixed.load_state_dict(layer.state_dict() | masked)
    torch.testing.assert_close(got, fixed.step(x, state))
    assert not torch.equal(got[0], layer.step(x, state)[0])  # the next call draws anew


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.0, r"weight_dropout must be in \[0, 1\), got 1.0"),
        (-0.1, r"weight_dropout must be in \[0, 1\), got -0.1"),
        ("0.1", "weight_dropout must be a number in"),
        (True, "weight_dropout must be a number in"),
    ],
)
def test_weight_dropout_validation_names_the_field(value, message):
    for make in (enn.RNN, enn.LSTM, enn.GRU):
        with pytest.raises(ValueError, match=message):
            make(3, 4, weight_dropout=value)
    with pytest.raises(ValueError, match=message):
        enn.RecurrentConfig(mode="GRU", input_size=3, hidden_size=4, weight_dropout=value)


def test_repr_and_build_recurrent_carry_weight_dropout():
    assert "weight_dropout=0.25" in repr(enn.GRU(3, 4, weight_dropout=0.25))
    assert "weight_dropout" not in repr(enn.GRU(3, 4))
    built = enn.build_recurrent("ln-lstm", 3, 4, 2, weight_dropout=0.3)
    assert built.config.weight_dropout == 0.3 and built.config.layer_norm
    twin = enn.Recurrent(built.config)
    assert twin.config == built.config


# --- locked dropout -------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_locked_dropout_uses_one_mask_across_time(batch_first):
    torch.manual_seed(0)
    drop = enn.LockedDropout(0.4, batch_first=batch_first).train()
    x = torch.ones(8, 10, 32)  # (T, B, F) or (B, T, F)
    y = drop(x)
    time_axis = 1 if batch_first else 0
    first = y.select(time_axis, 0).unsqueeze(time_axis)
    assert torch.equal(y, first.expand_as(y))  # the same features zeroed at every step
    assert torch.equal(y.unique(), torch.tensor([0.0, 1 / 0.6]))
    rows = first.squeeze(time_axis)  # (B, F): one mask per sequence
    assert len({tuple(r.tolist()) for r in rows}) == rows.shape[0]  # rows differ


def test_locked_dropout_is_identity_in_eval_or_at_rate_zero_and_keeps_the_expectation():
    x = torch.randn(5, 3, 4)
    assert enn.LockedDropout(0.5).eval()(x) is x
    assert enn.LockedDropout(0.0).train()(x) is x
    gen_mean = torch.stack(
        [enn.LockedDropout(0.3).train()(torch.ones(2, 50, 40)) for _ in range(50)]
    ).mean()
    assert abs(gen_mean.item() - 1.0) < 0.02  # 200,000 draws: sd of the mean ~0.0015


def test_locked_dropout_on_padded_unbatched_and_packed_input():
    torch.manual_seed(1)
    drop = enn.LockedDropout(0.5).train()
    x = torch.ones(6, 3, 8)
    x[4:, 1] = 0  # padding after length 4 stays zero
    y = drop(x)
    assert torch.equal(y[4:, 1], torch.zeros(2, 8))
    z = drop(torch.ones(7, 8))  # (T, F): one mask for the sequence
    assert torch.equal(z, z[:1].expand_as(z))
    packed = pack_padded_sequence(
        torch.ones(6, 3, 8), torch.tensor([6, 2, 4]), enforce_sorted=False
    )
    out, lengths = pad_packed_sequence(drop(packed))
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(out[:n, b], out[:1, b].expand(n, 8))
    assert enn.LockedDropout(0.5).eval()(packed) is packed


def test_locked_dropout_gradient_is_the_mask_and_bad_input_is_refused():
    x = torch.randn(4, 2, 6, requires_grad=True)
    torch.manual_seed(0)
    y = enn.LockedDropout(0.5).train()(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad * x.detach(), y.detach())
    with pytest.raises(ValueError, match="p must be in"):
        enn.LockedDropout(1.0)
    with pytest.raises(TypeError, match="batch_first must be True or False"):
        enn.LockedDropout(0.1, batch_first=1)
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        enn.LockedDropout(0.1)(torch.ones(4))
    assert (
        repr(enn.LockedDropout(0.2, batch_first=True)) == "LockedDropout(p=0.2, batch_first=True)"
    )


# --- embedding dropout ----------------------------------------------------------------------


def test_embedding_dropout_drops_whole_words_and_scales_the_rest():
    torch.manual_seed(0)
    embed = nn.Embedding(12, 5)
    ids = torch.randint(0, 12, (4, 30))  # every word repeats
    out = enn.embedding_dropout(embed, ids, 0.5, training=True)  # (4, 30, 5)
    dropped, kept = 0, 0
    for v in ids.unique().tolist():
        rows = out[ids == v]
        if torch.equal(rows, torch.zeros_like(rows)):
            dropped += 1
        else:
            kept += 1
            torch.testing.assert_close(rows, (embed.weight[v] / 0.5).expand_as(rows))
    assert dropped and kept


def test_embedding_dropout_in_eval_or_at_rate_zero_is_the_embedding():
    embed = nn.Embedding(10, 4, padding_idx=0)
    ids = torch.randint(0, 10, (3, 7))
    assert torch.equal(enn.embedding_dropout(embed, ids, 0.5, training=False), embed(ids))
    assert torch.equal(enn.embedding_dropout(embed, ids, 0.0, training=True), embed(ids))


def test_embedding_dropout_keeps_padding_idx_and_max_norm():
    torch.manual_seed(0)
    embed = nn.Embedding(10, 4, padding_idx=0)
    ids = torch.tensor([[0, 1, 2, 0, 3]])
    enn.embedding_dropout(embed, ids, 0.3, training=True).sum().backward()
    assert torch.equal(embed.weight.grad[0], torch.zeros(4))  # the padding row learns nothing
    capped = nn.Embedding(10, 4, max_norm=1.0)
    with torch.no_grad():
        capped.weight.mul_(10)
    twin = nn.Embedding(10, 4, max_norm=1.0)
    twin.load_state_dict(capped.state_dict())
    twin(ids)
    enn.embedding_dropout(capped, ids, 0.3, training=True)
    assert torch.equal(capped.weight, twin.weight)  # renormalised in place as embed(ids) does


def test_embedding_dropout_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.5"):
        enn.embedding_dropout(nn.Embedding(3, 2), torch.tensor([1]), 1.5, True)
    with pytest.raises(TypeError, match=r"embed must be an nn\.Embedding"):
        enn.embedding_dropout(nn.Linear(3, 2), torch.tensor([1]), 0.1, True)
    with pytest.raises(ValueError, match="sparse=False"):
        enn.embedding_dropout(nn.Embedding(3, 2, sparse=True), torch.tensor([1]), 0.1, True)


# ---- locked dropout between stacked layers (RecurrentConfig.locked_dropout) ---------------
def _stack(kind: str, backend: str, layers: int = 3, **kw):
    torch.manual_seed(0)
    cls = {"LSTM": enn.LSTM, "GRU": enn.GRU, "RNN": enn.RNN}[kind]
    return cls(3, 4, layers, dropout=0.5, locked_dropout=True, backend=backend, **kw).double()


def _alone(stack, layer: int):
    """Layer ``layer`` of ``stack`` as a one-layer module with the same weights."""
    c = stack.config
    one = type(stack)(stack.config.cell(layer).input_size, c.hidden_size).double()
    one.load_state_dict(
        {
            k.replace(f"_l{layer}", "_l0"): v
            for k, v in stack.state_dict().items()
            if f"_l{layer}" in k
        }
    )
    return one


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_locked_dropout_between_layers_is_one_mask_per_sequence(kind, backend):
    """Training output equals the layers run one by one with one (1, B, F) mask after each
    but the last: the same mask at every step of every sequence."""
    stack = _stack(kind, backend).train()
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    torch.manual_seed(5)
    got, _ = stack(x)
    alone = [_alone(stack, layer) for layer in range(3)]  # built before the seed: init draws
    torch.manual_seed(5)
    y = x
    for layer in range(3):
        y, _ = alone[layer](y)
        if layer < 2:
            y = y * y.new_empty(1, 2, 4).bernoulli_(0.5).div_(0.5)
    torch.testing.assert_close(got, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_locked_dropout_between_layers_in_eval_is_the_plain_stack(backend):
    stack = _stack("LSTM", backend).eval()
    plain = enn.LSTM(3, 4, 3, dropout=0.5, backend=backend).double().eval()
    plain.load_state_dict(stack.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(stack(x)[0], plain(x)[0], rtol=0, atol=0)


def test_locked_dropout_between_layers_keeps_lengths_packing_residual_and_capture():
    stack = _stack("LSTM", "reference", residual=True, batch_first=True).train()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    y, (h, c), states = stack(x, lengths=lengths, return_all_states=True)
    assert y.shape == (3, 6, 4) and h.shape == c.shape == (3, 3, 4)
    assert states.h.shape == (3, 1, 3, 6, 4) and states.c.shape == (3, 1, 3, 6, 4)
    assert (y[1, 2:] == 0).all() and (y[2, 4:] == 0).all()
    assert (states.h[:, :, 1, 2:] == 0).all()  # captured like the plain stack's
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = stack(packed)
    assert pad_packed_sequence(out, batch_first=True)[0].shape == (3, 6, 4)
    y.sum().backward()
    assert all(p.grad is not None for p in stack.parameters())


def test_locked_dropout_between_layers_combines_with_weight_dropout_and_bidirectional():
    stack = enn.GRU(
        3, 4, 2, dropout=0.3, locked_dropout=True, weight_dropout=0.4, bidirectional=True
    ).train()
    y, h = stack(torch.randn(5, 2, 3))
    assert y.shape == (5, 2, 8) and h.shape == (4, 2, 4)
    with pytest.raises(TypeError, match="locked_dropout must be True or False"):
        enn.LSTM(3, 4, 2, locked_dropout="yes")
