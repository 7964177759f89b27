"""Power of the verdict rule itself: how likely each verdict is, and how many seeds settle a claim.

The rule (``analysis.verdicts.rules``): with the mean paired effect ``m`` (test scale: log ratio or
difference), its standard error ``se`` and t degrees of freedom ``df``,

* supported  iff the (1 - 2 alpha) interval m +- t(1 - alpha, df) se lies inside the band (TOST p <= alpha);
* refuted    iff the two-sided (1 - alpha) interval m +- t(1 - alpha/2, df) se lies wholly outside it;
* inconclusive otherwise.

With ``n`` units (seeds or launches) of sd ``sd`` and a part ``se_fixed`` that does not shrink
with n (the test set's image component, treated as known), ``m ~ N(effect, sd^2/n + se_fixed^2)``,
the sample sd ``s ~ sd * sqrt(chi2(n-1) / (n-1))`` independent of ``m``, ``se^2 = s^2/n + se_fixed^2``
and ``df`` is Satterthwaite's (``n - 1`` when ``se_fixed = 0``). Given ``s`` both verdicts are
normal probabilities, so each verdict's probability is a one-dimensional integral over the chi
distribution of ``s``: computed here with Gauss-Legendre quadrature on the chi-square quantile
scale (exact up to quadrature error ~1e-6; checked against noncentral t and a simulation).

Everything is on the test scale; callers convert relative bands with log1p.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from analysis.estimators.effects import seeds_images_df

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(256)
_U = (_NODES + 1) / 2  # quadrature on (0, 1): the chi-square probability scale
_W = _WEIGHTS / 2

__all__ = ["verdict_probabilities", "seeds_needed", "smallest_settleable_band", "power_curve", "MAX_N"]

MAX_N = 1000  # seeds_needed looks no further; a power curve that must reach it stops here too


def _probabilities(effect, sd: float, n, band, alpha: float, se_fixed: float, image_df: float):
    """(supported, refuted) probabilities for every n in the array ``n`` (``[E, K]`` for an array of E effects:
    the quadrature over the sd is shared, so several true effects cost about one)."""
    lo, hi = (float(b) for b in band)
    n = np.atleast_1d(np.asarray(n, dtype=float))[:, None]  # [K, 1]
    df_seed = n - 1
    sd = max(float(sd), 0.0)
    fixed2 = float(se_fixed) ** 2
    # s^2 / sd^2 = chi2(df)/df at the quadrature nodes: [K, G]
    ratio = special.chdtri(df_seed, 1 - _U[None, :]) / df_seed
    var_seed = sd**2 * ratio / n  # s^2 / n
    se_hat = np.sqrt(var_seed + fixed2)
    df = seeds_images_df(var_seed, n, fixed2, image_df + 1)  # analyze's df rule (n - 1 without a fixed part)
    t1 = np.where(np.isfinite(df), special.stdtrit(np.minimum(df, 1e12), 1 - alpha), special.ndtri(1 - alpha))
    t2 = np.where(np.isfinite(df), special.stdtrit(np.minimum(df, 1e12), 1 - alpha / 2), special.ndtri(1 - alpha / 2))
    sigma_m = np.sqrt(sd**2 / n + fixed2)  # sd of m: [K, 1]
    many = np.ndim(effect) > 0
    effect = np.asarray(effect, dtype=float).reshape(-1, 1, 1)  # [E, 1, 1]
    if sd == 0 and fixed2 == 0:  # no noise at all: the verdict is certain
        shape = (effect.shape[0], n.shape[0])
        sup = np.broadcast_to(((lo <= effect) & (effect <= hi))[:, :, 0], shape).astype(float)
        ref = np.broadcast_to(((effect < lo) | (effect > hi))[:, :, 0], shape).astype(float)
        return (sup, ref) if many else (sup[0], ref[0])
    a = (lo + t1 * se_hat - effect) / sigma_m
    b = (hi - t1 * se_hat - effect) / sigma_m
    supported = np.where(b > a, special.ndtr(b) - special.ndtr(a), 0.0)
    above = special.ndtr(-(hi + t2 * se_hat - effect) / sigma_m)
    below = special.ndtr((lo - t2 * se_hat - effect) / sigma_m)
    refuted = above + below
    sup, ref = supported @ _W, refuted @ _W
    return (sup, ref) if many else (sup[0], ref[0])


def _check(sd, band, alpha):
    lo, hi = band
    if not (0 < alpha < 0.5):
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"band must be finite with lo < hi, got {band}")
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be a finite number >= 0, got {sd}")


def verdict_probabilities(effect: float, *, sd: float, n: int, band, alpha: float = 0.05, se_fixed: float = 0.0,
                          image_df: float = math.inf) -> dict:
    """``{"supported", "refuted", "inconclusive"}``: probability of each verdict with ``n`` units.

    NaN everywhere when n < 2 or an input is not finite.
    """
    if n is None or n < 2 or not all(math.isfinite(x) for x in (effect, sd, se_fixed)):
        return {"supported": math.nan, "refuted": math.nan, "inconclusive": math.nan}
    _check(sd, band, alpha)
    sup, ref = _probabilities(effect, sd, [n], band, alpha, se_fixed, image_df)
    sup, ref = float(np.clip(sup[0], 0, 1)), float(np.clip(ref[0], 0, 1))
    return {"supported": sup, "refuted": ref, "inconclusive": max(0.0, 1.0 - sup - ref)}


def power_curve(effect: float, *, sd: float, band, alpha: float = 0.05, ns, se_fixed: float = 0.0,
                image_df: float = math.inf) -> dict:
    """``{"n", "supported", "refuted", "settled"}`` over the unit counts ``ns`` (each >= 2)."""
    ns = [int(k) for k in ns]
    if any(k < 2 for k in ns):
        raise ValueError("power_curve needs n >= 2 everywhere")
    _check(sd, band, alpha)
    sup, ref = _probabilities(effect, sd, ns, band, alpha, se_fixed, image_df)
    sup, ref = np.clip(sup, 0, 1), np.clip(ref, 0, 1)
    return {"n": ns, "supported": sup.tolist(), "refuted": ref.tolist(), "settled": np.clip(sup + ref, 0, 1).tolist()}


def power_curve_pair(supported_at: float, settled_at: float, *, sd: float, band, alpha: float = 0.05, ns,
                     se_fixed: float = 0.0, image_df: float = math.inf) -> dict:
    """``{"n", "supported", "settled"}``: P(supported) if the true effect is ``supported_at`` and P(supported or
    refuted) if it is ``settled_at`` (the verdict table's seeds needed and seeds to settle), in one quadrature."""
    ns = [int(k) for k in ns]
    if any(k < 2 for k in ns):
        raise ValueError("power_curve_pair needs n >= 2 everywhere")
    _check(sd, band, alpha)
    sup, ref = _probabilities(np.array([supported_at, settled_at], dtype=float), sd, ns, band, alpha, se_fixed,
                              image_df)
    return {"n": ns, "supported": np.clip(sup[0], 0, 1).tolist(), "settled": np.clip(sup[1] + ref[1], 0, 1).tolist()}


def seeds_needed(effect: float, *, sd: float, band, alpha: float = 0.05, target: float = 0.8,
                 outcome: str = "supported", max_n: int = MAX_N, se_fixed: float = 0.0,
                 image_df: float = math.inf) -> int | None:
    """Smallest n (>= 2) whose probability of ``outcome`` ('supported' or 'settled' = supported or refuted)
    reaches ``target``; None when it is not reached by ``max_n`` (e.g. the fixed image part alone is too wide)."""
    if outcome not in ("supported", "settled"):
        raise ValueError(f"outcome must be 'supported' or 'settled', got {outcome!r}")
    if not all(math.isfinite(x) for x in (effect, sd, se_fixed)):
        return None
    _check(sd, band, alpha)

    def reached(k: int) -> bool:
        sup, ref = _probabilities(effect, sd, [k], band, alpha, se_fixed, image_df)
        return float((sup if outcome == "supported" else sup + ref)[0]) >= target - 1e-12

    # probabilities grow with n (up to quadrature noise): doubling, then bisection
    lo, hi = 1, 2
    while not reached(hi):
        if hi >= max_n:
            return None
        lo, hi = hi, min(2 * hi, int(max_n))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reached(mid) else (mid, hi)
    return hi


def smallest_settleable_band(*, sd: float, n: int, alpha: float = 0.05, target: float = 0.8,
                             se_fixed: float = 0.0, image_df: float = math.inf) -> float:
    """Width of the narrowest band, centred on the true effect, that ``n`` units support with prob. ``target``."""
    if n is None or n < 2 or not (math.isfinite(sd) and math.isfinite(se_fixed)):
        return math.nan
    if sd <= 0 and se_fixed <= 0:
        return 0.0

    def p(width: float) -> float:
        return float(_probabilities(0.0, sd, [n], (-width / 2, width / 2), alpha, se_fixed, image_df)[0][0])

    scale = math.sqrt(sd**2 / n + se_fixed**2)
    hi = 4 * scale
    while p(hi) < target:
        hi *= 2
        if hi > 1e6 * scale:
            return math.inf
    lo = 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p(mid) < target else (lo, mid)
    return hi


def hypothesis_rule_probabilities(parts: list[dict], *, alpha: float, n_sim: int = 20_000, corr=None,
                                  random_state=None) -> dict:
    """``{"supported", "refuted", "settled"}`` of analyze's hypothesis rule (``analysis.verdicts.rules.judge_hypotheses``),
    simulated: supported iff every part's TOST p <= alpha (intersection-union), refuted iff the smallest
    Holm-adjusted (within the hypothesis) refute p is <= alpha. Each part is judged by the claim rule above
    (its own t df: ``seeds_images_df``).

    ``parts``: dicts with ``effect``, ``sd``, ``n``, ``band`` (test scale) and optional ``se_fixed``,
    ``image_df``; parts with the same ``n`` key ``"units": "seeds"`` share seeds and are drawn with correlation
    ``corr`` (the pilot's, over those parts in order); other parts (speed, on launches) are independent.
    """
    from scipy import special as sp

    rng = np.random.default_rng(random_state)
    seeded = [k for k, p in enumerate(parts) if p.get("units", "seeds") == "seeds"]
    z = np.empty((len(parts), n_sim, max(int(p["n"]) for p in parts)))
    if seeded:
        c = np.eye(len(seeded)) if corr is None else np.asarray(corr, dtype=float)
        n_seed = max(int(parts[k]["n"]) for k in seeded)
        draws = rng.multivariate_normal(np.zeros(len(seeded)), c, size=(n_sim, n_seed), method="eigh")
        for j, k in enumerate(seeded):
            z[k, :, :n_seed] = draws[:, :, j]
    for k in (k for k in range(len(parts)) if k not in seeded):
        z[k, :, : int(parts[k]["n"])] = rng.standard_normal((n_sim, int(parts[k]["n"])))
    p_eq, p_ref = [], []
    for k, part in enumerate(parts):
        n, fixed = int(part["n"]), float(part.get("se_fixed", 0.0))
        x = part["effect"] + part["sd"] * z[k, :, :n]
        m = x.mean(1) + (fixed * rng.standard_normal(n_sim) if fixed > 0 else 0.0)
        var_seed = x.var(1, ddof=1) / n
        se = np.sqrt(var_seed + fixed**2)
        df = seeds_images_df(var_seed, n, fixed**2, float(part.get("image_df", math.inf)) + 1)
        lo, hi = part["band"]
        with np.errstate(divide="ignore", invalid="ignore"):
            p_low = sp.stdtr(np.minimum(df, 1e12), -(m - lo) / se)
            p_upp = sp.stdtr(np.minimum(df, 1e12), (m - hi) / se)
        p_eq.append(np.maximum(p_low, p_upp))
        p_ref.append(np.minimum(1.0, 2 * np.minimum(1 - p_low, 1 - p_upp)))
    supported = np.all(np.asarray(p_eq) <= alpha, axis=0)
    refuted = ~supported & (np.min(np.asarray(p_ref), axis=0) * len(parts) <= alpha)  # Holm's smallest: k x min p
    sup, ref = float(supported.mean()), float(refuted.mean())
    return {"supported": sup, "refuted": ref, "settled": sup + ref}
