"""CRF against brute force on tiny cases; pooling against unpadded single-sequence runs."""

from __future__ import annotations

import itertools

import pytest
import torch

from elman.nn.crf import CRF
from elman.nn.pooling import POOLINGS, Pooling


def _brute(crf: CRF, emissions: torch.Tensor, n: int) -> tuple[torch.Tensor, list[int]]:
    """log Z and the best path of one row of length n, by enumerating every tag sequence."""
    k = crf.num_tags
    scores, paths = [], []
    for path in itertools.product(range(k), repeat=n):
        tags = torch.tensor([path])
        mask = torch.ones(1, n, dtype=torch.bool)
        scores.append(crf.score(emissions[None, :n], tags, mask)[0])
        paths.append(list(path))
    scores_t = torch.stack(scores)
    return torch.logsumexp(scores_t, 0), paths[int(scores_t.argmax())]


@pytest.mark.parametrize("seed", range(4))
def test_crf_forward_algorithm_and_viterbi_equal_brute_force(seed):
    torch.manual_seed(seed)
    crf = CRF(3).double()
    for p in crf.parameters():
        torch.nn.init.normal_(p)
    lengths = torch.tensor([4, 2, 1])
    emissions = torch.randn(3, 4, 3, dtype=torch.float64)
    mask = torch.arange(4)[None] < lengths[:, None]
    fast = crf.log_partition(emissions, mask, fast=True)
    reference = crf.log_partition(emissions, mask, fast=False)
    paths = crf.decode(emissions, mask)
    for b, n in enumerate(lengths.tolist()):
        want_z, want_path = _brute(crf, emissions[b], n)
        assert fast[b].item() == pytest.approx(want_z.item(), abs=1e-10)
        assert reference[b].item() == pytest.approx(want_z.item(), abs=1e-10)
        assert paths[b] == want_path


def _log_z_and_grads(crf: CRF, emissions, mask, fast):
    e = emissions.clone().requires_grad_()
    crf.zero_grad()
    z = crf.log_partition(e, mask, fast=fast)
    z.sum().backward()
    return z.detach(), e.grad, crf.transitions.grad.clone()


def test_crf_fast_forward_algorithm_matches_reference_with_gradients():
    torch.manual_seed(0)
    crf = CRF(40)
    torch.nn.init.normal_(crf.transitions, std=3.0)
    emissions = torch.randn(6, 9, 40) * 5
    mask = torch.arange(9)[None] < torch.tensor([9, 7, 5, 3, 2, 1])[:, None]
    got = _log_z_and_grads(crf, emissions, mask, True)
    want = _log_z_and_grads(crf, emissions, mask, False)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_crf_wide_transition_range_takes_the_reference_path():
    crf = CRF(3)
    with torch.no_grad():
        crf.transitions.copy_(torch.tensor([[0.0, 0, 0], [-200.0, -200, -200], [0, 0, 0]]))
    emissions = torch.zeros(1, 3, 3)
    emissions[0, 0, 1] = 300.0  # every path leaves tag 1 through a -200 transition
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert not torch.isfinite(crf.log_partition(emissions, mask, fast=True)).all()
    auto = crf.log_partition(emissions, mask)
    assert torch.isfinite(auto).all()
    torch.testing.assert_close(auto, crf.log_partition(emissions, mask, fast=False))


def test_crf_loss_ignores_padding_and_trains():
    torch.manual_seed(0)
    crf = CRF(4).double()
    emissions = torch.randn(2, 5, 4, dtype=torch.float64)
    tags = torch.randint(4, (2, 5))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    junk = emissions.clone()
    junk[0, 3:] = 1e3
    tags_junk = tags.clone()
    tags_junk[0, 3:] = -100
    assert torch.allclose(crf(emissions, tags, mask), crf(junk, tags_junk, mask))
    assert (crf(emissions, tags, mask) > 0).all()  # -log p of a probability below one
    torch.autograd.gradcheck(lambda e: crf(e, tags, mask).sum(), emissions.clone().requires_grad_())


def test_crf_rejects_bad_shapes():
    crf = CRF(3)
    with pytest.raises(ValueError, match=r"emissions: expected \(B, T, 3\)"):
        crf.decode(torch.randn(2, 4, 5), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="first step"):
        crf.decode(torch.randn(1, 2, 3), torch.tensor([[False, True]]))
    with pytest.raises(ValueError, match="num_tags"):
        CRF(0)


@pytest.mark.parametrize("kind", POOLINGS)
@pytest.mark.parametrize("directions", [1, 2])
def test_pooling_of_padded_rows_equals_each_row_alone(kind, directions):
    torch.manual_seed(1)
    pool = Pooling(kind, 6, directions).double()
    lengths = torch.tensor([5, 2, 3])
    outputs = torch.randn(3, 5, 6, dtype=torch.float64)
    padded = outputs.clone()
    for b, n in enumerate(lengths.tolist()):
        padded[b, n:] = 1e6  # junk in the padding changes nothing
    pooled = pool(padded, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = pool(outputs[b : b + 1, :n], lengths[b : b + 1])
        assert torch.allclose(pooled[b], alone[0])


def test_last_pooling_takes_each_directions_final_step():
    outputs = torch.arange(2 * 3 * 4, dtype=torch.float64).view(2, 3, 4)
    pooled = Pooling("last", 4, 2)(outputs, torch.tensor([2, 3]))
    assert pooled[0].tolist() == [*outputs[0, 1, :2].tolist(), *outputs[0, 0, 2:].tolist()]
    assert pooled[1].tolist() == [*outputs[1, 2, :2].tolist(), *outputs[1, 0, 2:].tolist()]
    with pytest.raises(ValueError, match="pooling must be one of"):
        Pooling("sum", 4)
