"""Power and seed planning for paired comparisons (``statsmodels.stats.power.TTestPower``).

Effects are given in the units of the paired differences (or log ratios for relative
claims) together with the observed sd of those differences; they are converted to
Cohen's d_z = effect / sd. ``alternative`` is ``"larger"`` (one-sided, the sign of the
effect is taken as the claimed direction) or ``"two-sided"``. Every function returns
NaN/None instead of raising when the inputs make power undefined (sd = 0, n < 2, ...).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import TTestPower

_POWER = TTestPower()


def _first_n(ok, max_n: int) -> int | None:
    """Smallest n in [2, max_n] with ``ok(n)`` True, for a predicate monotone in n (doubling + bisection)."""
    lo, hi = 1, 2
    while not ok(hi):
        if hi >= max_n:
            return None
        lo, hi = hi, min(2 * hi, max_n)
    while hi - lo > 1:  # ok(hi) is True, ok(lo) False (or lo == 1)
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _d(effect: float, sd: float) -> float:
    if not (np.isfinite(effect) and np.isfinite(sd)) or not sd > 0:
        return math.nan
    return abs(float(effect)) / float(sd)


def power_at_n(effect: float, sd: float, n: int, *, alpha: float = 0.05, alternative: str = "larger") -> float:
    """Power of the paired t-test with ``n`` pairs to detect a true mean difference ``effect``."""
    d = _d(effect, sd)
    if not np.isfinite(d) or n is None or n < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(_POWER.power(effect_size=d, nobs=n, alpha=alpha, alternative=alternative))


def seeds_needed(
    effect: float, sd: float, *, alpha: float = 0.05, power: float = 0.8, alternative: str = "larger",
    max_n: int = 100_000,
) -> int | None:
    """Smallest number of pairs giving at least ``power`` (``TTestPower.solve_power``, rounded up).

    None when the effect is 0 / undefined or more than ``max_n`` pairs would be needed.
    """
    d = _d(effect, sd)
    if not np.isfinite(d) or d == 0:
        return None
    if power_at_n(d, 1.0, 2, alpha=alpha, alternative=alternative) >= power:
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            n = float(_POWER.solve_power(effect_size=d, nobs=None, alpha=alpha, power=power,
                                         alternative=alternative))
        except Exception:  # noqa: BLE001 - root finding failed
            n = math.nan
    if not np.isfinite(n):
        # fall back to a direct search (solve_power can fail for very large or tiny d)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _first_n(lambda k: _POWER.power(effect_size=d, nobs=k, alpha=alpha,
                                                   alternative=alternative) >= power, max_n)
    n_int = max(2, math.ceil(n - 1e-9))
    return n_int if n_int <= max_n else None


def min_detectable_effect(
    sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8, alternative: str = "larger"
) -> float:
    """Smallest true mean difference (in the units of ``sd``) detected with ``power`` using ``n`` pairs."""
    if n is None or n < 2 or not np.isfinite(sd) or not sd > 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            d = float(_POWER.solve_power(effect_size=None, nobs=n, alpha=alpha, power=power,
                                         alternative=alternative))
        except Exception:  # noqa: BLE001
            return math.nan
    return d * float(sd)


def tost_power(
    effect: float, sd: float, n: int, low: float, upp: float, *, alpha: float = 0.05
) -> float:
    """Approximate power of paired TOST against ``(low, upp)`` when the true mean difference is ``effect``.

    Noncentral-t lower bound P(T_upp < -t) - P(T_low <= t), exact when only one edge matters
    (the usual approximation, as in PASS / TOSTER).
    """
    if n is None or n < 2 or not np.isfinite(sd) or not sd > 0 or not low < upp:
        return math.nan
    df = n - 1
    se = sd / math.sqrt(n)
    tc = sps.t.ppf(1 - alpha, df)
    p = sps.nct.cdf(-tc, df, (effect - upp) / se) - sps.nct.cdf(tc, df, (effect - low) / se)
    return float(min(1.0, max(0.0, p)))


def tost_seeds_needed(
    effect: float, sd: float, low: float, upp: float, *, alpha: float = 0.05, power: float = 0.8,
    max_n: int = 100_000,
) -> int | None:
    """Smallest n with ``tost_power >= power`` (None when not reachable within ``max_n``)."""
    if not np.isfinite(sd) or not sd > 0 or not low < effect < upp:
        return None
    return _first_n(lambda k: tost_power(effect, sd, k, low, upp, alpha=alpha) >= power, max_n)


def power_curve(
    n_values, effect: float, sd: float, *, alpha: float = 0.05, alternative: str = "larger"
) -> dict:
    """Power over a range of n (for the seeds-vs-power plot): ``{"n", "power", "effect", "sd", "d_z", "alpha"}``."""
    n_values = [int(n) for n in n_values]
    d = _d(effect, sd)
    powers = [power_at_n(effect, sd, n, alpha=alpha, alternative=alternative) for n in n_values]
    return {"n": n_values, "power": powers, "effect": float(effect), "sd": float(sd), "d_z": d,
            "alpha": float(alpha), "alternative": alternative}


def seeds_to_settle(
    estimate: float, sd: float, low: float, upp: float, *, alpha: float = 0.05, max_n: int = 100_000
) -> int | None:
    """Pairs needed for the (1 − 2α) t-interval around ``estimate`` to clear the nearest band edge.

    If the estimate is inside the band: the interval must fit inside it (→ supported); outside: the
    interval must clear the nearer edge (→ refuted). Assumes the observed mean and sd stay the same.
    """
    if not (np.isfinite(estimate) and np.isfinite(sd)) or not sd > 0:
        return None
    if low < estimate < upp:
        margin = min(estimate - low, upp - estimate)
    else:
        margin = max(low - estimate, estimate - upp)
    if not margin > 0:
        return None
    return _first_n(lambda k: sps.t.ppf(1 - alpha, k - 1) * sd / math.sqrt(k) < margin, max_n)
