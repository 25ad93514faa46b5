"""Classification scores: accuracy, macro-F1 and the confusion matrix, as plain numbers."""

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
