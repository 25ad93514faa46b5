"""TBPTT streams: rows are contiguous, chunks continue each other, shards split rows."""

from __future__ import annotations

import pytest
import torch

from elman.data.stream import TokenStream


def test_chunks_continue_rows_and_targets_are_shifted_inputs():
    tokens = torch.arange(25)
    stream = TokenStream(tokens, batch_size=2, seq_len=4)
    assert len(stream) == 3  # rows of 12 steps -> 3 chunks of 4
    first, second = stream[0], stream[1]
    assert first.x.tolist() == [[0, 1, 2, 3], [12, 13, 14, 15]]
    assert second.x.tolist() == [[4, 5, 6, 7], [16, 17, 18, 19]]
    assert torch.equal(first.y, first.x + 1)
    rows = torch.cat([stream[i].x for i in range(len(stream))], dim=1)
    assert torch.equal(rows.flatten(), tokens[:24])


def test_evaluation_keeps_the_partial_last_chunk():
    stream = TokenStream(torch.arange(23), batch_size=2, seq_len=4, full_chunks_only=False)
    assert len(stream) == 3 and stream[2].x.shape == (2, 3)
    assert stream.tokens_per_pass == 22


def test_rows_shard_for_data_parallel():
    whole = TokenStream(torch.arange(41), 4, 5)
    half = TokenStream(torch.arange(41), 4, 5, rows=slice(2, 4))
    assert torch.equal(half[1].x, whole[1].x[2:])


def test_document_starts_are_reported_per_chunk():
    stream = TokenStream(torch.arange(25), 2, 4, doc_starts=torch.tensor([6, 12]))
    assert stream[0].starts is not None and stream[0].starts[1, 0]  # row 1 begins at 12
    assert stream[1].starts[0].tolist() == [False, False, True, False]  # position 6
    assert stream[2].starts is None


def test_too_short_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match=r"corpus too short: 10 tokens .* 4 rows x 8 steps"):
        TokenStream(torch.arange(10), 4, 8)
