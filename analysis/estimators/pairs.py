"""Paired values, the two rules every estimator and effect size shares: which pairs count, and when values are
all equal (no sd can be estimated). numpy only."""

from __future__ import annotations

import numpy as np


def finite_pairs(variant, baseline) -> tuple[np.ndarray, np.ndarray]:
    """The pairs where both values are finite (raises ValueError when the arrays differ in length)."""
    v = np.asarray(variant, dtype=float).ravel()
    b = np.asarray(baseline, dtype=float).ravel()
    if v.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {v.size} vs {b.size}")
    keep = np.isfinite(v) & np.isfinite(b)
    return v[keep], b[keep]


def is_degenerate(x) -> bool:
    """All values equal up to rounding (identical runs): no sd can be estimated."""
    x = np.asarray(x, dtype=float)
    return x.size >= 1 and float(np.ptp(x)) <= 1e-12 * max(1.0, float(np.max(np.abs(x))))
