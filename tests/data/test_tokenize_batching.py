"""Tokenizers, vocabularies, padding and bucketing."""

from __future__ import annotations

import pytest
import torch

from elman.data.batching import bucket_batches, collate, pad, padding_share
from elman.data.tokenize import EOS_ID, PAD_ID, SPECIALS, UNK_ID, Tokenizer

TEXTS = ["The cat sat on the mat.", "The dog sat on the log!", "A cat, a dog."]


def test_word_vocabulary_cuts_rare_words_to_unk_and_round_trips():
    tok = Tokenizer.fit(TEXTS, "word", min_freq=2, lower=True)
    assert tok.tokens[:3] == SPECIALS
    assert tok.split("Don't stop-gap, 3.5!") == ["don't", "stop-gap", ",", "3", ".", "5", "!"]
    assert "the" in tok.tokens and "mat" not in tok.tokens  # "mat" occurs once
    ids = tok.encode("The mat", eos=True)
    assert ids[1] == UNK_ID and ids[-1] == EOS_ID
    assert tok.decode(tok.encode("the cat sat")) == "the cat sat"
    assert Tokenizer.from_json(tok.to_json()) == tok
    assert tok.unknown_rate(["mat mat the"]) == pytest.approx(2 / 3)


def test_max_size_keeps_the_most_frequent_and_char_kind_splits_characters():
    tok = Tokenizer.fit(TEXTS, "word", max_size=5, lower=True)
    assert tok.tokens == (*SPECIALS, "the", ".")  # ties broken alphabetically
    chars = Tokenizer.fit(TEXTS, "char")
    assert chars.decode(chars.encode("cat")) == "cat"
    assert chars.encode("Z")[0] == UNK_ID


def test_bpe_round_trips_through_json():
    pytest.importorskip("tokenizers")
    tok = Tokenizer.fit(TEXTS * 20, "bpe", max_size=60)
    assert tok.tokens[:3] == SPECIALS and len(tok) <= 60
    ids = tok.encode("The cat sat on the log.")
    assert tok.decode(ids) == "The cat sat on the log."
    again = Tokenizer.from_json(tok.to_json())
    assert again.encode("The cat sat on the log.") == ids


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "sentencepiece"}, "tokenizer kind must be one of"),
        ({"min_freq": 0}, "min_freq must be an integer >= 1, got 0"),
        ({"max_size": 2}, "max_size must be an integer > 3, got 2"),
        ({"min_freq": 99}, "no token occurs often enough"),
    ],
)
def test_bad_vocabulary_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Tokenizer.fit(TEXTS, **kwargs)


def test_pad_collate_and_mask():
    seqs = [torch.tensor([1, 2, 3]), torch.tensor([4]), torch.tensor([5, 6])]
    x, lengths = pad(seqs)
    assert x.tolist() == [[1, 2, 3], [4, PAD_ID, PAD_ID], [5, 6, PAD_ID]]
    assert lengths.tolist() == [3, 1, 2]
    tags = [torch.tensor([7, 8, 9]), torch.tensor([1]), torch.tensor([2, 3])]
    batch = collate(seqs, [2, 1], tags)
    assert batch.y.tolist() == [[2, 3], [1, -100]]
    assert batch.mask.tolist() == [[True, True], [True, False]]
    assert collate(seqs, [0, 2], torch.tensor([0, 1, 1])).y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        pad([torch.tensor([1]), torch.tensor([], dtype=torch.long)])


def test_bucketing_covers_every_index_once_and_cuts_padding():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 100, (1000,), generator=g).tolist()
    batches = bucket_batches(lengths, 16, torch.Generator().manual_seed(1))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    again = bucket_batches(lengths, 16, torch.Generator().manual_seed(1))
    assert again == batches  # same generator state, same batches
    shuffled = [list(range(i, min(i + 16, 1000))) for i in range(0, 1000, 16)]
    assert padding_share(lengths, batches) < 0.1 < padding_share(lengths, shuffled)
    fixed = bucket_batches(lengths, 16, shuffle=False)
    assert fixed == bucket_batches(lengths, 16, shuffle=False)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        bucket_batches(lengths, 0)
