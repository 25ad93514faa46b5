"""Detection metrics against 0/1 labels (see ``elman.tasks.forecast.anomaly``): precision, recall
and F1 point by point and point-adjusted, and PR-AUC of the raw scores."""

from __future__ import annotations

import numpy as np


def detection_scores(labels: np.ndarray, flags: np.ndarray, raw: np.ndarray) -> dict[str, float]:
    """Point-wise and point-adjusted precision/recall/F1, and PR-AUC of the raw scores."""
    labels, flags = np.asarray(labels).astype(bool), np.asarray(flags).astype(bool)
    adjusted = flags.copy()
    for start, end in _segments(labels):
        if flags[start:end].any():
            adjusted[start:end] = True
    out = {}
    for name, f in (("point", flags), ("adjusted", adjusted)):
        tp = int((f & labels).sum())
        precision = tp / max(int(f.sum()), 1)
        recall = tp / max(int(labels.sum()), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out |= {f"{name}_precision": precision, f"{name}_recall": recall, f"{name}_f1": f1}
    return out | {"pr_auc": average_precision(labels, raw)}


def _segments(labels: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], labels.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def average_precision(labels: np.ndarray, raw: np.ndarray) -> float:
    """Σ_k (R_k - R_{k-1}) P_k over the scores in descending order (ties broken by order)."""
    labels = np.asarray(labels).astype(bool)
    if not labels.any():
        return float("nan")
    order = np.argsort(-np.asarray(raw, dtype=np.float64), kind="stable")
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / hits.sum())


__all__ = ["average_precision", "detection_scores"]
