"""Scores as plain numbers: accuracy, macro-F1 and the confusion matrix for classification;
edit distance and word/phoneme error rates for transduction."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def confusion_matrix(truth: Tensor, predicted: Tensor, classes: int) -> Tensor:
    """(K, K) int64 counts; row = true class, column = predicted class."""
    index = truth.long() * classes + predicted.long()
    return torch.bincount(index, minlength=classes * classes).view(classes, classes)


def scores(truth: Tensor, predicted: Tensor, classes: int) -> dict:
    """Accuracy, macro-F1 (the mean of per-class F1, classes absent from both truth and
    prediction left out) and the confusion matrix as nested lists."""
    cm = confusion_matrix(truth, predicted, classes).double()
    tp = cm.diag()
    precision_den, recall_den = cm.sum(0), cm.sum(1)
    f1 = 2 * tp / (precision_den + recall_den).clamp(min=1)
    present = (precision_den + recall_den) > 0
    return {
        "accuracy": float(tp.sum() / cm.sum().clamp(min=1)),
        "macro_f1": float(f1[present].mean()) if bool(present.any()) else 0.0,
        "confusion": cm.long().tolist(),
    }


def format_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The confusion matrix as an aligned text table (rows: truth, columns: predicted)."""
    names = [str(c) for c in classes]
    width = max(4, *(len(n) for n in names), *(len(str(v)) for r in confusion for v in r))
    head = " " * width + " | " + " ".join(n.rjust(width) for n in names)
    rows = [
        n.rjust(width) + " | " + " ".join(str(v).rjust(width) for v in r)
        for n, r in zip(names, confusion, strict=True)
    ]
    return "\n".join([head, "-" * len(head), *rows])


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: insertions, deletions and substitutions, each costing 1."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def error_rates(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]
) -> dict[str, float]:
    """Word error rate (share of predictions that equal none of their references) and token
    error rate (Σ edit distance / Σ reference length, each prediction scored against its
    closest reference: the CMUdict convention for words with several pronunciations)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    wrong = distance = length = 0
    for pred, refs in zip(predictions, references, strict=True):
        d, ref = min((edit_distance(pred, r), r) for r in refs)
        wrong += d > 0
        distance, length = distance + d, length + len(ref)
    n = max(len(predictions), 1)
    return {"wer": wrong / n, "per": distance / max(length, 1), "words": len(predictions)}
