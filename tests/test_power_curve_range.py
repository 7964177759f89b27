"""Power curves reach the claim's seeds_needed (the marker sits on the line), or run to the cap and say so."""

from __future__ import annotations

import math

from analysis.estimators.verdict_power import MAX_N, seeds_needed
from analysis.sections.power_curves import curve_ns, power_curves
from analysis.verdicts.records import ClaimVerdict

BAND = (0.02, 0.03)


def claim(sd, *, se_fixed=0.0, image_df=None, n=6):
    band_x = (math.log1p(BAND[0]), math.log1p(BAND[1]))
    kw = dict(sd=sd, band=band_x, alpha=0.05, se_fixed=se_fixed, image_df=image_df or math.inf)
    needed = seeds_needed(sum(band_x) / 2, **kw)
    return ClaimVerdict(claim="skip_fused miou +2%..+3%", hypothesis="h", variant="skip_fused", baseline="all_mlp",
                        metric="miou", band=list(BAND), relative=True, n=n, sd=sd, se_fixed=se_fixed,
                        image_df=image_df, seeds_needed=needed, power_effect=0.025)


def test_curve_runs_past_seeds_needed_beyond_forty():
    cv = claim(0.01, se_fixed=0.0008, image_df=12)
    assert cv.seeds_needed is not None and cv.seeds_needed > 45  # the case the old n <= 40 range cut off
    (curve,) = power_curves([cv], alpha=0.05)
    assert max(curve["n"]) >= cv.seeds_needed and cv.seeds_needed in curve["n"] and not curve["capped"]
    # the curve is the rule seeds_needed used (same sd, fixed part and image df): it crosses 80 % exactly there
    at = dict(zip(curve["n"], curve["supported"]))
    assert at[cv.seeds_needed] >= 0.8 > at[max(k for k in curve["n"] if k < cv.seeds_needed)]
    assert curve["seeds_needed"] == cv.seeds_needed and curve["max_n"] == max(curve["n"])


def test_out_of_reach_runs_to_the_cap_and_says_so():
    # the fixed (test-set) part alone is wider than the band: no number of seeds supports the claim
    cv = claim(0.01, se_fixed=0.01)
    assert cv.seeds_needed is None
    (curve,) = power_curves([cv], alpha=0.05)
    assert curve["capped"] and curve["max_n"] == MAX_N == max(curve["n"])


def test_small_cases_keep_every_n_up_to_forty():
    assert curve_ns(6, 12) == list(range(2, 41))
    ns = curve_ns(6, 400)
    assert ns[:99] == list(range(2, 101)) and 400 in ns and max(ns) == 500 and len(ns) < 250


def test_issue18_defect_7_plotted_settled_curve_is_the_tables_seeds_to_settle():
    # smoke report: a refuted claim (estimate far below the band) had "n needed (settled) 2" in the table and a
    # dashed "P(settled)" near 0.05 in the plot, computed at the band's midpoint instead of the estimate
    from analysis.estimators.verdict_power import seeds_needed as needed_for

    cv = claim(0.05, n=3)
    band_x = (math.log1p(BAND[0]), math.log1p(BAND[1]))
    cv.test_estimate, cv.estimate = math.log(1 - 0.468), -0.468
    cv.seeds_to_settle = needed_for(cv.test_estimate, sd=0.05, band=band_x, alpha=0.05, outcome="settled")
    (curve,) = power_curves([cv], alpha=0.05)
    at = dict(zip(curve["n"], curve["settled"]))
    assert curve["seeds_to_settle"] == cv.seeds_to_settle and cv.seeds_to_settle in at
    assert at[cv.seeds_to_settle] >= 0.8
    assert all(p < 0.8 for k, p in at.items() if k < cv.seeds_to_settle)


def test_power_curve_pair_is_the_two_single_curves():
    from analysis.estimators.verdict_power import power_curve, power_curve_pair

    band_x = (math.log1p(BAND[0]), math.log1p(BAND[1]))
    kw = dict(sd=0.01, band=band_x, alpha=0.05, ns=range(2, 30), se_fixed=0.002, image_df=50)
    pair = power_curve_pair(sum(band_x) / 2, -0.05, **kw)
    assert pair["supported"] == power_curve(sum(band_x) / 2, **kw)["supported"]
    assert pair["settled"] == power_curve(-0.05, **kw)["settled"]
