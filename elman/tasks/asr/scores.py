"""Word and character error rates, corpus-level (jiwer): the edit distance summed over every
utterance divided by the reference words (characters) in all of them,

    WER = (S + D + I) / N

not a mean of per-utterance rates, which would weigh a two-word command like a sentence."""

from __future__ import annotations

from collections.abc import Sequence

from elman.data.speech.audio import require


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    """WER and CER of ``hypotheses`` against ``references`` (normalised texts, one per
    utterance), with the word counts behind the WER. An empty hypothesis is all deletions."""
    if len(references) != len(hypotheses):
        raise ValueError(
            f"hypotheses: expected one per reference ({len(references)}), got {len(hypotheses)}"
        )
    if not references:
        raise ValueError("references: expected at least one utterance to score, got none")
    empty = [i for i, r in enumerate(references) if not r.strip()]
    if empty:
        raise ValueError(f"references: utterance {empty[0]} has an empty transcript")
    jiwer = require("jiwer")
    words = jiwer.process_words(list(references), list(hypotheses))
    chars = jiwer.process_characters(list(references), list(hypotheses))
    return {
        "wer": float(words.wer),
        "cer": float(chars.cer),
        "substitutions": words.substitutions,
        "deletions": words.deletions,
        "insertions": words.insertions,
        "words": sum(len(r.split()) for r in references),
        "utterances": len(references),
    }


__all__ = ["error_rates"]
