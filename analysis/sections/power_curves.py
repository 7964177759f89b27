"""verdicts.json's ``power_curves``: each claim's verdict probabilities against the number of seeds
(``analysis.estimators.verdict_power``)."""

from __future__ import annotations

import math

import numpy as np


def power_curves(claims: list, *, alpha: float, min_n: int = 40) -> list[dict]:
    """Verdict probabilities vs units for each claim (``analysis.estimators.verdict_power.power_curve``): one quantity per name,
    the same as the verdict table's "n needed (supported / settled)".

    ``supported``: P(supported) if the true effect is the band's midpoint (the claim as stated; the table's
    ``seeds_needed``); ``settled``: P(supported or refuted) if the true effect is as estimated (the table's
    ``seeds_to_settle``). The curve runs from 2 to past both, so each 80 % crossing is on its drawn line;
    when 80 % supported is out of reach it runs to ``analysis.estimators.verdict_power.MAX_N`` and says so (``capped``).
    """
    from analysis.estimators.verdict_power import power_curve, power_curve_pair

    curves = []
    for cv in claims:
        if cv.n < 2 or not (np.isfinite(cv.sd) and np.isfinite(cv.se_fixed)) or cv.sd + cv.se_fixed <= 0:
            continue
        lo, hi = cv.band
        band_x = (math.log1p(lo), math.log1p(hi)) if cv.relative else (lo, hi)
        ns = curve_ns(cv.n, cv.seeds_needed, min_n=min_n, also=cv.seeds_to_settle)
        kw = dict(sd=cv.sd, band=band_x, alpha=alpha, ns=ns, se_fixed=cv.se_fixed,
                  image_df=cv.image_df if cv.image_df is not None else math.inf)
        mid = (band_x[0] + band_x[1]) / 2
        if np.isfinite(cv.test_estimate):
            curve = power_curve_pair(mid, cv.test_estimate, **kw)
            settled = curve["settled"]
        else:
            curve, settled = power_curve(mid, **kw), None
        curves.append({"label": cv.claim, "claim": cv.claim, "n": curve["n"], "supported": curve["supported"],
                       "settled": settled, "current_n": int(cv.n), "unit": cv.n_unit,
                       "effect": cv.power_effect, "settled_effect": cv.estimate, "sd": cv.sd,
                       "se_fixed": cv.se_fixed, "band": list(cv.band), "seeds_needed": cv.seeds_needed,
                       "seeds_to_settle": cv.seeds_to_settle, "max_n": ns[-1], "capped": cv.seeds_needed is None})
    return curves

def curve_ns(current_n: int, needed: int | None, *, min_n: int = 40, also: int | None = None) -> list[int]:
    """Unit counts of a power curve: every n from 2 to 100, then about 120 log-spaced ones, up to
    max(min_n, 2 * current_n, 1.25 * needed), or to ``analysis.estimators.verdict_power.MAX_N`` when ``needed`` is None
    (80 % not reached by then); ``needed`` itself always included."""
    from analysis.estimators.verdict_power import MAX_N

    top = max(min_n, 2 * int(current_n))
    top = MAX_N if needed is None else min(max(top, math.ceil(1.25 * needed)), MAX_N)
    ns = set(range(2, min(top, 100) + 1))
    if top > 100:
        ns |= {int(k) for k in np.unique(np.round(np.geomspace(100, top, 120)))}
    for n in (needed, also):  # ``also``: another marked n (seeds to settle), drawn when inside the range
        if n is not None and 2 <= n <= MAX_N:
            ns.add(int(n))
    if also is not None and also > top:
        ns |= {int(k) for k in np.unique(np.round(np.geomspace(top, min(MAX_N, math.ceil(1.25 * also)), 40)))}
    return sorted(ns)
