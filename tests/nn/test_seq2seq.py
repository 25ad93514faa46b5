"""The encoder-decoder: stepping equals whole-sequence runs, padding never matters, attention
weights are a distribution over real positions, and the searches find what they promise."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from elman.decode import Sampling, beam_search, greedy_search
from elman.nn import GRU, LSTM
from elman.nn.seq2seq import ATTENTIONS, Seq2Seq, select

EOS = 2


def model(attention="general", cell="lstm", **kw) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(7, 6, cell, embedding=5, hidden=4, attention=attention, **kw).double().eval()


def batch():
    source = torch.tensor([[3, 4, 5, 6], [4, 5, 0, 0]])
    lengths = torch.tensor([4, 2])
    target_in = torch.tensor([[EOS, 3, 4, 5], [EOS, 5, 0, 0]])
    return source, lengths, target_in


@pytest.mark.parametrize("layer", [LSTM, GRU])
@pytest.mark.parametrize("layers", [1, 2])
def test_recurrent_step_equals_forward(layer, layers):
    torch.manual_seed(0)
    m = layer(3, 5, layers, batch_first=True).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    y, final = m(x)
    state = tuple(
        torch.zeros(layers, 2, 5, dtype=torch.float64) for _ in range(2 if layer is LSTM else 1)
    )
    outs = []
    for t in range(6):
        out, state = m.step(x[:, t], state)
        outs.append(out)
    torch.testing.assert_close(torch.stack(outs, 1), y)
    torch.testing.assert_close(state[0], final[0] if layer is LSTM else final)


def test_recurrent_step_refuses_bidirectional():
    m = LSTM(3, 5, bidirectional=True)
    with pytest.raises(ValueError, match="unidirectional"):
        m.step(torch.zeros(1, 3), (torch.zeros(2, 1, 5), torch.zeros(2, 1, 5)))


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_parallel_teacher_forcing_equals_stepping(attention, cell):
    m = model(attention, cell, layers=2)
    source, lengths, target_in = batch()
    fast, w_fast = m(source, lengths, target_in)
    state, logits, weights = m.encode(source, lengths), [], []
    for tokens in target_in.unbind(1):
        z, state, w = m.step(tokens, state)
        logits.append(z)
        weights.append(w)
    torch.testing.assert_close(fast, torch.stack(logits, 1))
    if attention == "none":
        assert w_fast is None and weights[0] is None
    else:
        torch.testing.assert_close(w_fast, torch.stack(weights, 1))


@pytest.mark.parametrize("attention", ["additive", "dot", "general"])
def test_attention_is_a_distribution_over_real_positions(attention):
    m = model(attention, input_feeding=True)
    source, lengths, target_in = batch()
    _, weights = m(source, lengths, target_in)  # (B, T, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, dtype=torch.float64))
    assert bool((weights[1, :, 2:] == 0).all())  # padding of the short source
    assert bool((weights[1, :, :2] > 0).all())


@pytest.mark.parametrize("feeding", [False, True])
def test_padding_changes_nothing(feeding):
    m = model("additive", input_feeding=feeding)
    source, lengths, target_in = batch()
    together, _ = m(source, lengths, target_in)
    alone, _ = m(source[1:, :2], lengths[1:], target_in[1:, :2])
    torch.testing.assert_close(together[1, :2], alone[0])


def test_without_bridge_the_decoder_starts_from_zeros():
    m = model(bridge=False)
    source, lengths, _ = batch()
    state = m.encode(source, lengths)
    assert bool((state.hidden == 0).all()) and bool((state.cell == 0).all())
    assert m.bridge_h is None and m.bridge_c is None


def test_scheduled_sampling_changes_inputs_only_when_asked():
    m = model(input_feeding=False).train()
    source, lengths, target_in = batch()
    torch.manual_seed(1)
    a, _ = m(source, lengths, target_in, sample_rate=0.0)
    torch.manual_seed(1)
    b, _ = m(source, lengths, target_in, sample_rate=0.0)
    torch.testing.assert_close(a, b)
    m.eval()
    torch.manual_seed(1)
    sampled, _ = m(source, lengths, target_in, sample_rate=0.99)
    assert not torch.allclose(sampled, m(source, lengths, target_in)[0])
    torch.testing.assert_close(sampled[:, 0], m(source, lengths, target_in)[0][:, 0])


# ---- searches --------------------------------------------------------------------------
def start(m):
    source, lengths, _ = batch()
    return m.encode(source, lengths)


@pytest.mark.parametrize("attention", ["none", "general"])
def test_beam_of_one_equals_greedy(attention):
    m = model(attention)
    greedy = greedy_search(m.step, start(m), 2, EOS, EOS, 8)
    beam = beam_search(m.step, select, start(m), 2, EOS, EOS, 1, 8)
    for g, (b,) in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens and g.finished == b.finished
        assert math.isclose(g.logprob, b.logprob, rel_tol=1e-6)
        if attention != "none":
            torch.testing.assert_close(g.attention, b.attention)


@torch.no_grad()
def sequence_logprob(m, state, row, tokens) -> float:
    """log p(tokens + <eos> | source row) by teacher forcing one row."""
    state = select(state, torch.tensor([row]))
    total, previous = 0.0, EOS
    for t in [*tokens, EOS]:
        logits, state, _ = m.step(torch.tensor([previous]), state)
        total += float(logits.log_softmax(-1)[0, t])
        previous = t
    return total


def test_beam_search_finds_the_exact_best_sequence():
    """Every sequence of up to 2 tokens from a 6-token vocabulary, scored by brute force;
    a beam as wide as all prefixes cannot miss the best one."""
    m = model("general")
    state = start(m)
    words = [t for t in range(6) if t != EOS]
    candidates = [list(c) for n in range(3) for c in itertools.product(words, repeat=n)]
    found = beam_search(m.step, select, state, 2, EOS, EOS, beam=40, max_len=3)
    for row in range(2):
        finished = [h for h in found[row] if h.finished]
        best = max(candidates, key=lambda c: sequence_logprob(m, state, row, c))
        assert finished[0].tokens == best
        assert math.isclose(
            finished[0].logprob, sequence_logprob(m, state, row, best), rel_tol=1e-9
        )


def test_beam_nbest_is_ranked_and_normalised():
    m = model("dot")
    hyps = beam_search(m.step, select, start(m), 2, EOS, EOS, 4, 6, alpha=1.0)
    for row in hyps:
        assert 1 <= len(row) <= 4
        scores = [h.score for h in row if h.finished]
        assert scores == sorted(scores, reverse=True)
        for h in row:
            if h.finished:
                assert math.isclose(h.score, h.logprob / (len(h.tokens) + 1), rel_tol=1e-9)
                assert h.attention.shape == (len(h.tokens) + 1, 4)


def test_search_limits_and_bad_widths():
    m = model()
    long = greedy_search(m.step, start(m), 2, EOS, 99, 3)  # an end token it never makes
    assert all(not h.finished and len(h.tokens) == 3 for h in long)
    with pytest.raises(ValueError, match="beam must be an integer >= 1, got 0"):
        beam_search(m.step, select, start(m), 2, EOS, EOS, 0, 5)
    with pytest.raises(ValueError, match="nbest must be <= beam"):
        beam_search(m.step, select, start(m), 2, EOS, EOS, 2, 5, nbest=3)
    with pytest.raises(ValueError, match="alpha"):
        beam_search(m.step, select, start(m), 2, EOS, EOS, 2, 5, alpha=-1)
    with pytest.raises(ValueError, match="max_len"):
        greedy_search(m.step, start(m), 2, EOS, EOS, 0)


def test_sampling_search_is_reproducible_with_a_seed():
    m = model()
    a = greedy_search(m.step, start(m), 2, EOS, EOS, 6, Sampling(1.0, seed=3))
    b = greedy_search(m.step, start(m), 2, EOS, EOS, 6, Sampling(1.0, seed=3))
    assert [h.tokens for h in a] == [h.tokens for h in b]
