"""Numbers that say how well a model sees the sound."""

from __future__ import annotations

import numpy as np


def r2_score(target: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination of a multi-column read-out, variance-weighted.

    The share of the target's total variance (summed over columns) that the prediction
    explains: 1.0 is a perfect read-out, 0.0 is no better than always guessing each
    column's mean. Pooling the columns (scikit-learn's "variance_weighted") keeps a column
    that hardly varies in this audio, such as a band that stays silent, from dominating.
    """
    target = np.asarray(target, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if target.shape != predicted.shape or target.ndim != 2:
        raise ValueError(
            f"r2_score needs two (n, d) arrays of one shape, got {target.shape} and {predicted.shape}"
        )
    residual = ((target - predicted) ** 2).sum(axis=0)
    total = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    if total.sum() <= 1e-12:
        raise ValueError("r2_score: the target does not vary")
    return float(1.0 - residual.sum() / total.sum())
