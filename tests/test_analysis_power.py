"""analysis.estimators.verdict_power: the verdict rule's own power, against noncentral t and a simulation of the rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.estimators.verdict_power import (
    power_curve,
    seeds_needed,
    smallest_settleable_band,
    verdict_probabilities,
)


def simulate_rule(effect, sd, n, band, alpha=0.05, se_fixed=0.0, runs=20000, seed=0):
    """The verdict rule applied to simulated studies (per-unit values + a shared fixed-error draw)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(effect, sd, size=(runs, n)) if sd > 0 else np.full((runs, n), float(effect))
    m = x.mean(1) + rng.normal(0, se_fixed, runs) if se_fixed > 0 else x.mean(1)
    s2n = x.var(1, ddof=1) / n
    se = np.sqrt(s2n + se_fixed**2)
    # analyze's df (analysis.estimators.effects.seeds_images_df, written out here): Satterthwaite with the seed part at its
    # median-unbiased value, kept within [n - 1, plain Satterthwaite]
    plain = se**4 / (s2n**2 / (n - 1))
    df = np.clip(se**4 / ((s2n * (n - 1) / stats.chi2.median(n - 1))**2 / (n - 1)), n - 1, plain)
    t1, t2 = stats.t.ppf(1 - alpha, df), stats.t.ppf(1 - alpha / 2, df)
    lo, hi = band
    supported = (m - t1 * se >= lo) & (m + t1 * se <= hi)
    refuted = (m - t2 * se > hi) | (m + t2 * se < lo)
    return supported.mean(), refuted.mean()


@pytest.mark.parametrize("effect, n", [(1.2, 6), (0.5, 15), (0.0, 3)])
def test_one_edge_equals_noncentral_t(effect, n):
    """With the far edge out of reach, 'supported' is a one-sided t-test: power = noncentral t survival."""
    df, sd, lo = n - 1, 1.0, 0.0
    got = verdict_probabilities(effect, sd=sd, n=n, band=(lo, 1e9))["supported"]
    assert got == pytest.approx(stats.nct.sf(stats.t.ppf(0.95, df), df, (effect - lo) * math.sqrt(n) / sd), abs=1e-6)
    # 'refuted' beyond the upper edge is the one-sided test at alpha/2
    got = verdict_probabilities(effect, sd=sd, n=n, band=(-1e9, 0.3))["refuted"]
    assert got == pytest.approx(stats.nct.sf(stats.t.ppf(0.975, df), df, (effect - 0.3) * math.sqrt(n) / sd),
                                abs=1e-6)


@pytest.mark.parametrize("effect, sd, n, band, se_fixed", [
    (0.025, 0.05, 5, (0.02, 0.03), 0.0),     # the narrow band: almost never supported
    (0.03, 0.02, 8, (0.0, 0.06), 0.0),       # TOST where both edges matter
    (0.02, 0.03, 4, (0.0, 0.04), 0.004),     # with a test-set component that does not shrink
    (0.08, 0.03, 5, (0.0, 0.04), 0.01),      # outside the band: refuted
])
def test_exact_tost_power_against_20000_run_simulation(effect, sd, n, band, se_fixed):
    sup_sim, ref_sim = simulate_rule(effect, sd, n, band, se_fixed=se_fixed, runs=20000)
    got = verdict_probabilities(effect, sd=sd, n=n, band=band, se_fixed=se_fixed)
    for p_exact, p_sim in ((got["supported"], sup_sim), (got["refuted"], ref_sim)):
        se = math.sqrt(max(p_exact * (1 - p_exact), 1e-4) / 20000)
        assert abs(p_exact - p_sim) < 4 * se + 1e-4
    assert got["supported"] + got["refuted"] + got["inconclusive"] == pytest.approx(1.0)


def test_seeds_needed_is_the_first_n_that_reaches_the_target():
    kw = dict(sd=0.05, band=(0.0, 0.06))
    n = seeds_needed(0.03, **kw)
    assert n is not None and n > 2
    assert verdict_probabilities(0.03, n=n, **kw)["supported"] >= 0.8
    assert verdict_probabilities(0.03, n=n - 1, **kw)["supported"] < 0.8
    settled = seeds_needed(0.09, outcome="settled", **kw)
    p = verdict_probabilities(0.09, n=settled, **kw)
    assert p["supported"] + p["refuted"] >= 0.8
    # a fixed (image) component wider than the band can never be settled by seeds
    assert seeds_needed(0.03, sd=0.05, band=(0.0, 0.06), se_fixed=0.05, max_n=200) is None


def test_smallest_settleable_band_is_settled_with_the_target_probability():
    for se_fixed in (0.0, 0.01):
        width = smallest_settleable_band(sd=0.05, n=10, se_fixed=se_fixed)
        p = verdict_probabilities(0.3, sd=0.05, n=10, band=(0.3 - width / 2, 0.3 + width / 2), se_fixed=se_fixed)
        assert p["supported"] == pytest.approx(0.8, abs=1e-6)
    assert smallest_settleable_band(sd=0.05, n=20) < smallest_settleable_band(sd=0.05, n=10)
    assert smallest_settleable_band(sd=0.05, n=10, se_fixed=0.01) > smallest_settleable_band(sd=0.05, n=10)


def test_power_curve_matches_pointwise_probabilities():
    curve = power_curve(0.03, sd=0.05, band=(0.0, 0.06), ns=[2, 5, 10, 40])
    assert curve["n"] == [2, 5, 10, 40]
    for i, n in enumerate(curve["n"]):
        p = verdict_probabilities(0.03, sd=0.05, n=n, band=(0.0, 0.06))
        assert curve["supported"][i] == pytest.approx(p["supported"])
        assert curve["settled"][i] == pytest.approx(p["supported"] + p["refuted"])
    assert np.all(np.diff(curve["supported"]) > 0)


def test_degenerate_inputs():
    assert math.isnan(verdict_probabilities(0.1, sd=0.1, n=1, band=(0, 1))["supported"])
    assert verdict_probabilities(0.5, sd=0.0, n=3, band=(0, 1))["supported"] == 1.0
    with pytest.raises(ValueError):
        verdict_probabilities(0.5, sd=0.1, n=3, band=(1, 1))
    with pytest.raises(ValueError):
        seeds_needed(0.5, sd=0.1, band=(0, 1), outcome="power")
