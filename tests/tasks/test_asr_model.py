"""The ASR task's alphabet and acoustic model."""

from __future__ import annotations

import pytest
import torch

from elman.tasks.asr.alphabet import BLANK, Alphabet
from elman.tasks.asr.model import AcousticModel


def test_alphabet_round_trip_and_blank():
    a = Alphabet()
    ids = a.encode("  Don't   STOP ")
    assert BLANK not in ids and len(a) == 29
    assert a.decode(ids) == "don't stop"
    assert a.decode([BLANK, *ids, BLANK]) == "don't stop"


@pytest.mark.parametrize("text", ["caf\u00e9", "route 66", "a-b"])
def test_alphabet_names_characters_outside_it(text):
    with pytest.raises(ValueError, match=r"utt7: characters .* outside the alphabet"):
        Alphabet().encode(text, where="utt7")


@pytest.mark.parametrize("symbols", ["", "aab ", "abc"])
def test_alphabet_validates_its_symbols(symbols):
    with pytest.raises(ValueError, match="alphabet"):
        Alphabet(symbols)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_unidirectional_model_streams_in_chunks_equal_to_the_whole(cell):
    torch.manual_seed(0)
    m = AcousticModel(12, 29, cell=cell, hidden=16, layers=2, bidirectional=False).eval()
    m.scale_mean.fill_(0.5)
    m.scale_std.fill_(2.0)
    x = torch.randn(2, 30, 12)
    whole, _ = m(x, torch.tensor([30, 30]))
    state, parts = None, []
    for chunk in x.split([7, 1, 13, 9], dim=1):
        out, state = m(chunk, state=state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), whole)
    assert torch.allclose(whole.exp().sum(-1), torch.ones(2, 30))  # log-probabilities


def test_bidirectional_model_ignores_padding():
    torch.manual_seed(0)
    m = AcousticModel(8, 29, hidden=8, layers=1, bidirectional=True).eval()
    x = torch.randn(1, 10, 8)
    padded = torch.cat([x, torch.randn(1, 5, 8)], 1)
    alone, _ = m(x, torch.tensor([10]))
    batch, _ = m(padded, torch.tensor([10]))
    torch.testing.assert_close(batch[:, :10], alone)
