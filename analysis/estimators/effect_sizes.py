"""Effect sizes of paired values: a table of small pure functions ``{name: fn}`` (rliable's ``library.py`` style).

Every effect-size dict in verdicts.json (a claim's ``effect_sizes``, each row of ``comparisons``) comes from
``effect_sizes``; adding one is one entry in ``EFFECT_SIZES`` (plus its reference test). Each function takes
``Pairs`` (higher = better for the variant) and returns a float, NaN where it is undefined. numpy/scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from analysis.estimators.pairs import finite_pairs, is_degenerate


@dataclass(frozen=True)
class Pairs:
    """Finite paired values: ``diff`` always; the two arms when known (a launch's log throughput ratio has none)."""
    diff: np.ndarray
    variant: np.ndarray | None = None
    baseline: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.diff.size)


def hedges_correction(df: float) -> float:
    """Exact small-sample bias correction J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2))."""
    if not df > 1:
        return math.nan
    return float(math.exp(special.gammaln(df / 2) - 0.5 * math.log(df / 2) - special.gammaln((df - 1) / 2)))


def cohens_d_z(p: Pairs) -> float:
    """Mean over sd of the paired differences."""
    if p.n < 2 or is_degenerate(p.diff):
        return math.nan
    return float(p.diff.mean() / np.std(p.diff, ddof=1))


def hedges_g_av(p: Pairs) -> float:
    """Hedges' g with the average of the two arms' sds, exact small-sample correction J(n - 1)."""
    if p.variant is None or p.n < 3:
        return math.nan
    sd_av = (np.std(p.variant, ddof=1) + np.std(p.baseline, ddof=1)) / 2
    return float(p.diff.mean() / sd_av * hedges_correction(p.n - 1)) if sd_av > 0 else math.nan


def paired_win_rate(p: Pairs) -> float:
    """Share of pairs where the variant is better, ties counted half."""
    if p.n == 0:
        return math.nan
    return float((np.sum(p.diff > 0) + 0.5 * np.sum(p.diff == 0)) / p.n)


def cliffs_delta(p: Pairs) -> float:
    """Cliff's delta: P(variant > baseline) - P(variant < baseline) over every variant x baseline value pair."""
    if p.variant is None or p.n == 0:
        return math.nan
    return float(np.sign(np.subtract.outer(p.variant, p.baseline)).mean())


EFFECT_SIZES = {
    "d_z": cohens_d_z,
    "g_av": hedges_g_av,
    "paired_win_rate": paired_win_rate,
    "cliffs_delta": cliffs_delta,
}


def effect_sizes(variant=None, baseline=None, *, diff=None) -> dict[str, float]:
    """Every entry of ``EFFECT_SIZES`` for paired ``variant`` / ``baseline`` values (non-finite pairs dropped), or
    for paired differences ``diff`` alone (those that need the two arms are NaN). Nothing given: all NaN."""
    if diff is not None:
        d = np.asarray(diff, dtype=float).ravel()
        pairs = Pairs(d[np.isfinite(d)])
    elif variant is not None:
        v, b = finite_pairs(variant, baseline)
        pairs = Pairs(v - b, v, b)
    else:
        pairs = Pairs(np.array([]))
    return {name: fn(pairs) for name, fn in EFFECT_SIZES.items()}


def described() -> str:
    """'{name: what it is; ...}' for verdicts.json's schema, from the functions' first doc lines."""
    return "; ".join(f"{name} = {fn.__doc__.splitlines()[0].rstrip('.')}" for name, fn in EFFECT_SIZES.items())
