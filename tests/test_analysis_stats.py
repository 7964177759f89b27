"""analysis.stats / power / claims against references: scipy, statsmodels, and R values quoted by them.

Simulations with a known true effect live in test_analysis_stats_sim.py.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from ablate.errors import AblateError, StudyError
from analysis import power
from analysis.claims import (
    CLAIM_RESULT_FIELDS,
    Claim,
    ClaimError,
    evaluate_claims,
    format_claim,
    interval_verdict,
    parse_claim,
    seed_claim_test,
)
from ablate.rundir import json_safe
from analysis.stats import (
    METHODS,
    hedges_correction,
    holm,
    image_bootstrap_miou,
    miou_from_confusion,
    one_sample_t,
    paired_effect,
    paired_image_bootstrap,
    t_interval,
    throughput_ratio,
    tost_1samp,
)

# "clinic" data from statsmodels/stats/tests/test_tost.py (R package `equivalence` examples):
# columns id, fact, var1..var5; rows 0-14 are group 1, rows 15-29 group 2 (paired by position).
_CLINIC_VAR1 = np.array([
    2.84, 2.51, 2.41, 2.95, 3.14, 3.79, 4.14, 3.85, 3.02, 3.45, 5.37, 3.81, 4.19, 3.16, 3.84,
    2.60, 2.82, 2.18, 3.46, 4.01, 3.04, 3.47, 4.06, 2.91, 3.59, 4.51, 3.16, 3.86, 3.31, 3.02,
])
_CLINIC_VAR2 = np.array([
    4.00, 3.26, 4.14, 3.42, 3.25, 4.34, 4.97, 4.31, 3.11, 3.41, 5.02, 4.21, 4.59, 5.30, 4.32,
    3.76, 3.66, 3.65, 3.60, 3.48, 2.87, 3.24, 3.92, 3.99, 4.21, 4.21, 3.31, 3.61, 2.97, 2.73,
])


def _strict_json(obj) -> str:
    return json.dumps(obj, allow_nan=False)


# --------------------------------------------------------------------------- paired_effect


def test_paired_effect_matches_r_paired_t_test():
    # R: t.test(clinic$var1[16:30], clinic$var1[1:15], paired=TRUE)  (statsmodels test_tost.py,
    # ttest_clinic_paired_1): statistic 1.213001548676048, p 0.245199929713149,
    # conf.int (-0.1264911434745851, 0.4558244768079186), estimate 0.1646666666666667.
    # (R's label order is reversed w.r.t. the estimate it prints; the estimate is var1[1:15] - var1[16:30].)
    v, b = _CLINIC_VAR1[:15], _CLINIC_VAR1[15:]
    pe = paired_effect(v, b, random_state=0)
    assert pe["n"] == 15
    assert pe["mean_diff"] == pytest.approx(0.1646666666666667, rel=1e-12)
    assert pe["p_ttest"] == pytest.approx(0.245199929713149, rel=1e-9)
    assert pe["ci_t"] == pytest.approx([-0.1264911434745851, 0.4558244768079186], rel=1e-9)


def test_paired_effect_matches_scipy_and_independent_references():
    rng = np.random.default_rng(3)
    b = rng.normal(0.56, 0.01, 9)
    v = b + rng.normal(0.01, 0.006, 9)
    pe = paired_effect(v, b, alpha=0.05, n_resamples=2000, random_state=42)
    d = v - b
    assert pe["p_ttest"] == pytest.approx(sps.ttest_rel(v, b).pvalue, rel=1e-12)
    assert pe["p_wilcoxon"] == pytest.approx(sps.wilcoxon(v, b).pvalue, rel=1e-12)
    # exact sign-flip permutation p by brute-force enumeration of all 2^9 sign patterns
    signs = np.array(list(itertools.product([1, -1], repeat=d.size)))
    null = np.abs((signs * d).mean(1))
    p_exact = np.mean(null >= abs(d.mean()) - 1e-12)
    assert pe["permutation_exact"] is True
    assert pe["p_permutation"] == pytest.approx(p_exact, rel=1e-9)
    # BCa: scipy.stats.bootstrap with the same generator gives the same interval
    ref = sps.bootstrap((d,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(42))
    assert pe["ci_bca"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], rel=1e-12)
    # effect sizes by their definitions
    assert pe["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    d_av = d.mean() / ((v.std(ddof=1) + b.std(ddof=1)) / 2)
    assert pe["g_av"] == pytest.approx(d_av * hedges_correction(8))
    # relative effect: geometric-mean ratio; t-interval on log ratios back-transformed
    lr = np.log(v / b)
    assert pe["rel_diff"] == pytest.approx(np.expm1(lr.mean()))
    lo, hi = sps.ttest_1samp(lr, 0).confidence_interval(0.95)
    assert pe["rel_ci"] == pytest.approx([np.expm1(lo), np.expm1(hi)])
    _strict_json(json_safe(pe))


def test_hedges_correction_exact_and_approximation():
    # J(df) -> Hedges (1981) approximation 1 - 3/(4 df - 1) (Lakens 2013, eq. 4 with df = n - 1)
    for df in (9, 19, 49):
        assert hedges_correction(df) == pytest.approx(1 - 3 / (4 * df - 1), abs=1e-3)
    assert hedges_correction(4) == pytest.approx(math.sqrt(2 / math.pi))  # Γ(2) / (√2 · Γ(3/2))
    assert hedges_correction(2) == pytest.approx(1 / math.sqrt(math.pi))  # Γ(1) / (1 · Γ(1/2))
    assert hedges_correction(9) < 1
    assert math.isnan(hedges_correction(1))


def test_json_safe():
    obj = {"a": np.float64("nan"), "b": (np.int64(3), np.inf), "c": np.array([1.5, np.nan]), "d": pd.NA,
           "e": np.bool_(True), 4: None}
    assert json_safe(obj) == {"a": None, "b": [3, None], "c": [1.5, None], "d": None, "e": True, "4": None}
    _strict_json(json_safe(obj))


def test_prob_improvement_counts_ties_half():
    pe = paired_effect([1.0, 2.0, 3.0, 4.0], [0.5, 2.0, 3.5, 3.0], n_resamples=0)
    assert pe["prob_improvement"] == pytest.approx((2 + 0.5) / 4)


@pytest.mark.parametrize(
    "v, b, n",
    [
        ([], [], 0),
        ([0.5], [0.4], 1),
        ([0.5, 0.6], [0.4, 0.5], 2),  # zero variance of the differences
        ([0.5, float("nan"), 0.6], [0.4, 0.5, float("nan")], 1),
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 3),  # identical runs
        ([-1.0, 0.5, 0.7], [0.4, 0.5, 0.6], 3),  # relative effect undefined
        ([np.nan] * 4, [np.nan] * 4, 0),
    ],
)
def test_paired_effect_degenerate_inputs_never_raise(v, b, n):
    pe = paired_effect(v, b, n_resamples=500, random_state=0)
    assert pe["n"] == n
    if n < 3 or np.std(np.subtract(v, b)) == 0:
        assert pe["notes"], "a NaN interval must come with a reason"
        assert all(math.isnan(x) for x in pe["ci_bca"])
    _strict_json(json_safe(pe))


def test_paired_effect_two_pairs_has_t_interval_but_no_bca():
    pe = paired_effect([0.5, 0.62], [0.4, 0.5], n_resamples=500, random_state=0)
    assert np.all(np.isfinite(pe["ci_t"]))
    assert all(math.isnan(x) for x in pe["ci_bca"])
    assert any("at least 3" in s for s in pe["notes"])


# --------------------------------------------------------------------------- TOST


def test_one_sample_t_matches_scipy():
    rng = np.random.default_rng(12)
    for n in (2, 3, 10, 40):
        x = rng.normal(0.3, 1, n)
        for alt in ("two-sided", "greater", "less"):
            for null in (0.0, 0.2):
                ref = sps.ttest_1samp(x, null, alternative=alt).pvalue
                assert one_sample_t(x, null=null, alternative=alt) == pytest.approx(ref, rel=1e-10)
        assert t_interval(x, confidence=0.9) == pytest.approx(sps.ttest_1samp(x, 0).confidence_interval(0.9))
    assert math.isnan(one_sample_t([1.0, 1.0, 1.0]))


def test_tost_matches_r_equivalence_package():
    # R: tost(clinic$var2[1:15] - clinic$var2[16:30], eps=0.6)  ->  p 0.4412034046017588,
    # 90% CI (0.1261653305099018, 0.999168002823431); quoted in statsmodels test_tost.py (tost_clinic_paired).
    d = _CLINIC_VAR2[:15] - _CLINIC_VAR2[15:]
    res = tost_1samp(d, -0.6, 0.6)
    assert res["p"] == pytest.approx(0.4412034046017588, rel=1e-9)
    assert t_interval(d, confidence=0.90) == pytest.approx((0.1261653305099018, 0.999168002823431), rel=1e-9)
    # tost_clinic_paired_1: same on var1 -> p 0.003166881489265175
    d1 = _CLINIC_VAR1[:15] - _CLINIC_VAR1[15:]
    assert tost_1samp(d1, -0.6, 0.6)["p"] == pytest.approx(0.003166881489265175, rel=1e-9)


def test_relative_claim_tost_matches_r_log_ratio_example():
    # R: tost(log(clinic$var1[1:15]), log(clinic$var1[16:30]), eps=log(1.25), paired=TRUE)
    # -> p 0.0001664157928976468, 90% CI of the mean log ratio (-0.02415225319362176, 0.1103969168386687)
    # (statsmodels test_tost.py, tost_clinic_1_paired). A band of ratios 0.8..1.25 is the relative band -20%..+25%.
    v, b = _CLINIC_VAR1[:15], _CLINIC_VAR1[15:]
    res = seed_claim_test(v, b, Claim("x", "miou", (-0.2, 0.25), relative=True))
    assert res["p_equivalence"] == pytest.approx(0.0001664157928976468, rel=1e-8)
    assert res["ci"] == pytest.approx(np.expm1([-0.02415225319362176, 0.1103969168386687]), rel=1e-9)
    assert res["verdict"] == "supported"


def test_tost_matches_statsmodels_ttost_paired_absolute_and_relative():
    rng = np.random.default_rng(11)
    for _ in range(20):
        n = int(rng.integers(3, 25))
        b = rng.uniform(0.4, 0.7, n)
        v = b * np.exp(rng.normal(rng.normal(0.02, 0.02), rng.uniform(0.005, 0.05), n))
        lo, hi = sorted(rng.uniform(-0.05, 0.08, 2))
        ref_abs = ttost_paired(v, b, lo, hi)
        got_abs = seed_claim_test(v, b, Claim("x", "miou", (lo, hi), relative=False), with_power=False)
        assert got_abs["p_equivalence"] == pytest.approx(ref_abs[0], rel=1e-9, abs=1e-15)
        ref_rel = ttost_paired(v, b, 1 + lo, 1 + hi, transform=np.log)
        got_rel = seed_claim_test(v, b, Claim("x", "miou", (lo, hi), relative=True), with_power=False)
        assert got_rel["p_equivalence"] == pytest.approx(ref_rel[0], rel=1e-9, abs=1e-15)


def test_holm_matches_statsmodels_multipletests():
    rng = np.random.default_rng(8)
    for m in (1, 2, 5, 12):
        p = rng.uniform(0, 0.2, m) ** 2
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], rel=1e-12)
    p = np.array([0.01, np.nan, 0.04, 0.03])
    ref = multipletests(p[[0, 2, 3]], method="holm")[1]
    got = holm(p)
    assert math.isnan(got[1]) and got[[0, 2, 3]] == pytest.approx(ref)
    assert holm([]).size == 0


# --------------------------------------------------------------------------- power


@pytest.mark.parametrize(
    "d, n, alternative, expected",
    [
        # R pwr.t.test(type="one.sample") values quoted in statsmodels/stats/tests/test_power.py
        (1.0, 30, "larger", 0.999892010204909),  # pwr.t.test(d=1,n=30,alternative="greater")
        (0.05, 20, "larger", 0.0764888785042198),  # pwr.t.test(d=0.05,n=20,alternative="greater")
        (0.2, 20, "two-sided", 0.1359562887679666),  # pwr.t.test(d=0.2,n=20,alternative="two.sided")
    ],
)
def test_power_at_n_matches_r_pwr(d, n, alternative, expected):
    sd = 0.013  # power depends on effect / sd only
    assert power.power_at_n(d * sd, sd, n, alpha=0.05, alternative=alternative) == pytest.approx(expected, rel=1e-6)


def test_seeds_needed_matches_r_pwr_paired():
    # R: pwr.t.test(d=0.25, type="paired", power=0.75) -> n = 112.9798 pairs;
    #    pwr.t.test(d=0.5,  type="paired", power=0.75) -> n = 29.7355 pairs (two-sided, sig.level 0.05)
    # (pwr output quoted at https://pastebin.com/dTaadhYz)
    assert power.seeds_needed(0.25, 1.0, power=0.75, alternative="two-sided") == 113
    assert power.seeds_needed(0.5, 1.0, power=0.75, alternative="two-sided") == 30
    # and against statsmodels TTestPower.solve_power directly
    for d in (0.3, 0.8, 1.5):
        n = TTestPower().solve_power(effect_size=d, alpha=0.05, power=0.8, alternative="larger")
        assert power.seeds_needed(d * 0.01, 0.01) == math.ceil(n)
    assert power.seeds_needed(0.0, 0.01) is None
    assert power.seeds_needed(0.01, 0.0) is None
    assert power.seeds_needed(10.0, 0.01) == 2  # huge effect: the smallest sensible n


def test_min_detectable_effect_has_the_target_power():
    sd, n = 0.008, 10
    mde = power.min_detectable_effect(sd, n)
    assert power.power_at_n(mde, sd, n) == pytest.approx(0.8, abs=1e-5)
    assert math.isnan(power.min_detectable_effect(0.0, 10))
    assert math.isnan(power.min_detectable_effect(0.01, 1))


def test_power_curve_monotone_and_json_safe():
    pc = power.power_curve(range(2, 31), 0.01, 0.01)
    assert pc["n"][0] == 2 and len(pc["power"]) == 29
    assert np.all(np.diff(pc["power"]) > 0)
    _strict_json(json_safe(pc))


def test_tost_power_against_simulation():
    rng = np.random.default_rng(5)
    n, sd, lo, hi, delta = 12, 1.0, -0.8, 0.8, 0.1
    x = rng.normal(delta, sd, (20000, n))
    m, se = x.mean(1), x.std(1, ddof=1) / math.sqrt(n)
    tc = sps.t.ppf(0.95, n - 1)
    sim = np.mean(((m - lo) / se > tc) & ((m - hi) / se < -tc))
    assert power.tost_power(delta, sd, n, lo, hi) == pytest.approx(sim, abs=0.015)
    needed = power.tost_seeds_needed(delta, sd, lo, hi)
    assert power.tost_power(delta, sd, needed, lo, hi) >= 0.8 > power.tost_power(delta, sd, needed - 1, lo, hi)


def test_seeds_to_settle_makes_the_interval_clear_the_edge():
    est, sd, lo, hi = 0.025, 0.01, 0.02, 0.03
    n = power.seeds_to_settle(est, sd, lo, hi)
    half = lambda k: sps.t.ppf(0.95, k - 1) * sd / math.sqrt(k)  # noqa: E731
    assert half(n) < 0.005 <= half(n - 1)
    assert power.seeds_to_settle(0.02, 0.01, 0.02, 0.03) is None  # on the edge: never settles


# --------------------------------------------------------------------------- image bootstrap


def _random_cms(rng, n=40, c=4, scale=400):
    """Per-image confusion matrices with a strong diagonal; some classes absent from some images."""
    cms = rng.poisson(scale / 20, (n, c, c)).astype(np.int64)
    cms[:, np.arange(c), np.arange(c)] += rng.poisson(scale, (n, c))
    cms[rng.random((n, c)) < 0.3] = 0  # whole truth rows absent
    return cms


def test_miou_is_a_ratio_of_sums_not_a_mean_of_per_image_ious():
    # two images, two classes: image 1 is large and good, image 2 tiny and bad
    cm1 = np.array([[900, 100], [50, 950]])
    cm2 = np.array([[1, 9], [9, 1]])
    total = cm1 + cm2
    tp = np.diag(total)
    expected = np.mean(tp / (total.sum(0) + total.sum(1) - tp))
    assert miou_from_confusion(total) == pytest.approx(expected)
    res = image_bootstrap_miou(np.stack([cm1, cm2]), n_resamples=200, random_state=0)
    assert res["miou"] == pytest.approx(expected)
    per_image_mean = np.mean([miou_from_confusion(cm1), miou_from_confusion(cm2)])
    assert abs(res["miou"] - per_image_mean) > 0.2
    # a class absent from truth and prediction is excluded, not counted as 0 or 1
    cm3 = np.array([[5, 1, 0], [1, 5, 0], [0, 0, 0]])
    assert miou_from_confusion(cm3) == pytest.approx(5 / 7)


def test_image_bootstrap_equals_a_plain_loop_over_the_same_resamples():
    rng = np.random.default_rng(0)
    cms = _random_cms(rng)
    n, b = cms.shape[0], 300
    res = image_bootstrap_miou(cms, n_resamples=b, random_state=123, method="percentile")
    draws = np.random.default_rng(123).integers(0, n, size=(b, n))  # the same draws as the bootstrap
    boot = []
    for k in range(b):  # the slow, obviously-correct version
        idx = draws[k]
        boot.append(miou_from_confusion(cms[idx].sum(0)))
    assert res["ci"] == pytest.approx(list(np.quantile(boot, [0.025, 0.975])), rel=1e-12)
    assert res["se"] == pytest.approx(np.std(boot, ddof=1), rel=1e-12)


def test_image_bootstrap_bca_close_to_scipy_bootstrap():
    rng = np.random.default_rng(1)
    cms = _random_cms(rng, n=30, c=3)
    mine = image_bootstrap_miou(cms, n_resamples=4000, random_state=0)
    ref = sps.bootstrap(
        (np.arange(cms.shape[0]),),
        lambda idx: miou_from_confusion(cms[idx].sum(0)),
        vectorized=False, n_resamples=4000, method="BCa", rng=np.random.default_rng(1),
    )
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert mine["ci"][0] == pytest.approx(ref.confidence_interval.low, abs=0.1 * width)
    assert mine["ci"][1] == pytest.approx(ref.confidence_interval.high, abs=0.1 * width)


def test_image_bootstrap_is_fast_on_camvid_sized_input():
    rng = np.random.default_rng(2)
    cms = _random_cms(rng, n=233, c=11, scale=5000)
    t0 = time.perf_counter()
    res = image_bootstrap_miou(cms, n_resamples=10_000, random_state=0)
    elapsed = time.perf_counter() - t0
    print(f"\nimage bootstrap 10,000 x 233 x 11x11: {elapsed:.2f} s", file=sys.stderr)
    assert res["ci"][0] < res["miou"] < res["ci"][1]
    assert elapsed < 20  # seconds, not minutes (about 1 s on one free core)


def test_paired_image_bootstrap():
    rng = np.random.default_rng(4)
    base = _random_cms(rng, n=50, c=4)
    better = base.copy()
    better[:, np.arange(4), np.arange(4)] += 30  # a uniformly better model on the same images
    res = paired_image_bootstrap(better, base, n_resamples=2000, random_state=0)
    assert res["delta"] == pytest.approx(miou_from_confusion(better.sum(0)) - miou_from_confusion(base.sum(0)))
    assert 0 < res["ci"][0] < res["delta"] < res["ci"][1]
    assert res["p_bootstrap"] < 0.01
    single = image_bootstrap_miou(base, n_resamples=2000, random_state=0)
    assert res["se"] < single["se"]  # pairing removes the shared image difficulty
    same = paired_image_bootstrap(base, base, n_resamples=200, random_state=0)
    assert same["delta"] == 0 and same["notes"]
    bad = paired_image_bootstrap(base, base[:10], n_resamples=200)
    assert bad["notes"] and math.isnan(bad["delta"])
    _strict_json(json_safe(res))


def test_image_bootstrap_bad_shapes():
    assert image_bootstrap_miou(np.zeros((0, 3, 3)))["notes"]
    assert image_bootstrap_miou(np.zeros((5, 3)))["notes"]
    one = image_bootstrap_miou(np.eye(3)[None] * 10)
    assert one["miou"] == 1.0 and one["notes"]


# --------------------------------------------------------------------------- throughput


def test_throughput_ratio():
    rng = np.random.default_rng(6)
    base = 10 * np.exp(rng.normal(0, 0.03, 30))
    var = base * 1.25 * np.exp(rng.normal(0, 0.02, 30))  # 25 % slower per image
    tr = throughput_ratio(var, base, n_resamples=2000, random_state=0)
    assert tr["ratio"] == pytest.approx(base.sum() / var.sum())
    assert tr["fps_variant"] == pytest.approx(1000 / var.mean())
    assert tr["rel_change"] == pytest.approx(tr["ratio"] - 1)
    assert tr["ci"][0] < 1 / 1.25 < tr["ci"][1]
    ref = sps.bootstrap((var, base), lambda x, y, axis=-1: y.sum(axis) / x.sum(axis), paired=True,
                        n_resamples=2000, method="BCa", rng=np.random.default_rng(0))
    assert tr["ci"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], rel=1e-12)
    assert tr["fps_diff_ci"][0] < tr["fps_diff"] < tr["fps_diff_ci"][1] < 0
    _strict_json(json_safe(tr))


def test_throughput_ratio_degenerate():
    assert throughput_ratio([], [])["notes"]
    two = throughput_ratio([1.0, 1.1], [1.0, 1.0])
    assert two["ratio"] == pytest.approx(2 / 2.1) and two["notes"]
    flat = throughput_ratio([2.0] * 5, [1.0] * 5)
    assert flat["ratio"] == 0.5 and flat["notes"]


# --------------------------------------------------------------------------- claims: parsing and verdict logic


@pytest.mark.parametrize(
    "text, claim",
    [
        ("skip_fused miou +1%..+2%", Claim("skip_fused", "miou", (0.01, 0.02), relative=True)),
        ("progressive miou -0.01..0.01", Claim("progressive", "miou", (-0.01, 0.01), relative=False)),
        ("skip_fused fps -25%..-15%", Claim("skip_fused", "fps", (-0.25, -0.15), relative=True)),
        ("skip_fused miou 2% .. 3% vs progressive", Claim("skip_fused", "miou", (0.02, 0.03), True, "progressive")),
        ("  a pixel_acc .5..1e-0 ", Claim("a", "pixel_acc", (0.5, 1.0), relative=False)),
    ],
)
def test_parse_claim(text, claim):
    got = parse_claim(text)
    assert got.variant == claim.variant and got.metric == claim.metric
    assert got.relative == claim.relative and got.baseline == claim.baseline
    assert got.band == pytest.approx(claim.band)
    again = parse_claim(format_claim(got))
    assert again.band == pytest.approx(got.band) and again.relative == got.relative


@pytest.mark.parametrize(
    "text",
    ["", "skip_fused miou", "skip_fused miou 2%", "skip_fused miou 3%..2%", "skip_fused miou 1%..0.02",
     "skip_fused miou -150%..-120%", "skip_fused miou a..b", "skip_fused miou 1..2 extra"],
)
def test_parse_claim_errors_are_one_line_user_errors(text):
    with pytest.raises(ClaimError) as info:
        parse_claim(text)
    assert isinstance(info.value, StudyError) and isinstance(info.value, AblateError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "ci, band, verdict, direction",
    [
        ((0.021, 0.029), (0.02, 0.03), "supported", None),
        ((0.015, 0.025), (0.02, 0.03), "inconclusive", None),
        ((0.001, 0.015), (0.02, 0.03), "refuted", "too small"),
        ((-0.01, 0.015), (0.02, 0.03), "refuted", "too small"),  # below the band, not entirely below 0
        ((-0.02, -0.005), (0.02, 0.03), "refuted", "wrong direction"),
        ((0.035, 0.05), (0.02, 0.03), "refuted", "too large"),
        ((-0.22, -0.18), (-0.25, -0.15), "supported", None),
        ((-0.10, -0.05), (-0.25, -0.15), "refuted", "too small"),  # a smaller slowdown than claimed
        ((-0.40, -0.30), (-0.25, -0.15), "refuted", "too large"),
        ((0.02, 0.05), (-0.25, -0.15), "refuted", "wrong direction"),
        ((-0.03, -0.02), (-0.01, 0.01), "refuted", "too small"),
        ((0.02, 0.03), (-0.01, 0.01), "refuted", "too large"),
        ((float("nan"), float("nan")), (-0.01, 0.01), "inconclusive", None),
    ],
)
def test_interval_verdict(ci, band, verdict, direction):
    assert interval_verdict(ci, band) == (verdict, direction)


# --------------------------------------------------------------------------- evaluate_claims


def _seed_rows(effects: dict, n_seeds=10, sd_seed=0.01, sd_diff=0.004, base=0.56, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_seeds):
        shared = base + rng.normal(0, sd_seed)
        for name, eff in effects.items():
            rows.append({"study": "t", "variant": name, "phase": "seed", "seed": s, "split": "test",
                         "miou": shared * (1 + eff) + rng.normal(0, sd_diff) * (name != "all_mlp"),
                         "status": "ok"})
    return pd.DataFrame(rows)


def _latency_rows(factors: dict, rounds=30, seed=0, batches=(1, 4)):
    rng = np.random.default_rng(seed)
    rows = []
    for batch in batches:
        for r in range(rounds):
            drift = 10 * np.exp(rng.normal(0, 0.05))
            for name, f in factors.items():
                rows.append({"variant": name, "round": r, "batch": batch, "height": 256, "width": 256,
                             "dtype": "fp32", "threads": 1, "device": "cpu",
                             "ms_per_image": drift * f * np.exp(rng.normal(0, 0.02)) / batch})
    return pd.DataFrame(rows)


_KEYS = {"claim", "variant", "baseline", "metric", "band", "relative", "n", "estimate", "ci", "ci_method",
         "estimate_abs", "ci_abs", "p_superiority", "p_superiority_holm", "p_equivalence", "p_equivalence_holm",
         "effect_sizes", "power", "mde", "seeds_needed", "verdict", "direction", "reason"}


def test_evaluate_claims_schema_holm_and_references():
    seeds = _seed_rows({"all_mlp": 0, "progressive": 0.002, "skip_fused": 0.025})
    lat = _latency_rows({"all_mlp": 1.0, "progressive": 1.08, "skip_fused": 1 / 0.8})
    claims = ["skip_fused miou +2%..+3%", "progressive miou -0.01..0.01", "skip_fused fps -25%..-15%",
              Claim("progressive", "miou", (0.02, 0.03))]
    res = evaluate_claims(claims, seeds, lat, baseline="all_mlp", n_resamples=999)
    _strict_json(res)
    assert len(res) == 4
    for r in res:
        assert _KEYS <= set(r), _KEYS - set(r)
        assert set(r) == set(CLAIM_RESULT_FIELDS), set(r) ^ set(CLAIM_RESULT_FIELDS)
        assert r["verdict"] in ("supported", "refuted", "inconclusive") and r["reason"]
        assert set(r["effect_sizes"]) == {"d_z", "g_av", "prob_improvement"}
    # Holm across all claims, from statsmodels
    for key in ("p_superiority", "p_equivalence"):
        assert [r[key + "_holm"] for r in res] == pytest.approx(
            multipletests([r[key] for r in res], method="holm")[1].tolist(), rel=1e-12)
    # relative TOST equals ttost_paired on logs; absolute equals ttost_paired
    t = seeds.pivot(index="seed", columns="variant", values="miou")
    assert res[0]["p_equivalence"] == pytest.approx(ttost_paired(t.skip_fused, t.all_mlp, 1.02, 1.03, np.log)[0])
    assert res[1]["p_equivalence"] == pytest.approx(ttost_paired(t.progressive, t.all_mlp, -0.01, 0.01)[0])
    assert res[0]["estimate_abs"] == pytest.approx((t.skip_fused - t.all_mlp).mean())
    # superiority is one-sided in the band's direction; two-sided reported too
    p1 = sps.ttest_rel(np.log(t.skip_fused), np.log(t.all_mlp), alternative="greater").pvalue
    assert res[0]["p_superiority"] == pytest.approx(p1)
    assert res[1]["alternative"] == "two-sided"
    # the speed claim: batch 1 rounds, ratio of throughputs
    r = res[2]
    lb = lat[lat.batch == 1].pivot(index="round", columns="variant", values="ms_per_image")
    assert r["n"] == 30 and r["estimate"] == pytest.approx(lb.all_mlp.sum() / lb.skip_fused.sum() - 1)
    assert r["verdict"] == "supported" and r["details"]["latency_setting"]["batch"] == 1
    assert res[3]["verdict"] == "refuted" and res[3]["direction"] == "too small"
    # power for the band's lower edge, in d_z units of the observed sd of the log ratios (TTestPower)
    lr = np.log(t.skip_fused / t.all_mlp)
    d_edge = np.log(1.02) / lr.std(ddof=1)
    assert res[0]["sd"] == pytest.approx(lr.std(ddof=1))
    assert res[0]["power"] == pytest.approx(TTestPower().power(d_edge, 10, 0.05, alternative="larger"))
    n80 = TTestPower().solve_power(d_edge, alpha=0.05, power=0.8, alternative="larger")
    assert res[0]["seeds_needed"] == max(2, math.ceil(n80))
    assert res[1]["verdict"] == "supported"


def _one(claim, seeds, latency=None, **kw):
    (res,) = evaluate_claims([claim], seeds, latency, baseline=kw.pop("baseline", "all_mlp"), n_resamples=200, **kw)
    _strict_json(res)
    return res


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: _seed_rows({"all_mlp": 0, "skip_fused": 0.02}, n_seeds=1), "only 1 paired seed"),
        (lambda: _seed_rows({"all_mlp": 0}), "variant 'skip_fused'"),
        (lambda: _seed_rows({"skip_fused": 0.02}), "baseline 'all_mlp'"),
        (lambda: _seed_rows({"all_mlp": 0, "skip_fused": 0.02}).assign(status="failed"), "all runs failed"),
        (lambda: _seed_rows({"all_mlp": 0, "skip_fused": 0.02}).assign(miou=np.nan), "no finished runs"),
        (lambda: _seed_rows({"all_mlp": 0, "skip_fused": 0.02}, sd_diff=0.0, sd_seed=0.0), "zero variance"),
        (lambda: pd.DataFrame(), "no finished seed runs"),
        (lambda: None, "no finished seed runs"),
        (lambda: _seed_rows({"all_mlp": 0, "skip_fused": 0.02}).drop(columns="miou"), "no column 'miou'"),
    ],
)
def test_evaluate_claims_robust_to_bad_data(make, fragment):
    r = _one("skip_fused miou +2%..+3%", make())
    assert r["verdict"] == "inconclusive"
    assert fragment in r["reason"], r["reason"]


def test_evaluate_claims_unpaired_seeds_reported_and_dropped():
    seeds = _seed_rows({"all_mlp": 0, "skip_fused": 0.025}, n_seeds=8)
    seeds = seeds[~((seeds.variant == "skip_fused") & (seeds.seed == 3))]
    r = _one("skip_fused miou +2%..+3%", seeds)
    assert r["n"] == 7 and r["unpaired"] == [3] and "unpaired" in r["reason"]


@pytest.mark.parametrize(
    "latency, fragment",
    [
        (None, "no latency"),
        (pd.DataFrame(columns=["variant", "round", "batch", "ms_per_image"]), "no latency"),
        (_latency_rows({"all_mlp": 1.0}), "no latency rounds for 'skip_fused'"),
        (_latency_rows({"all_mlp": 1.0, "skip_fused": 1.2}, rounds=1), "only 1 paired latency round"),
        (_latency_rows({"all_mlp": 1.0, "skip_fused": 1.2}).drop(columns="ms_per_image"), "lacks column"),
    ],
)
def test_fps_claims_robust_to_bad_latency(latency, fragment):
    r = _one("skip_fused fps -25%..-15%", _seed_rows({"all_mlp": 0}), latency)
    assert r["verdict"] == "inconclusive" and fragment in r["reason"], r["reason"]


def test_fps_claim_uses_smallest_common_batch_when_batch1_missing():
    lat = _latency_rows({"all_mlp": 1.0, "skip_fused": 1.25}, batches=(4, 8))
    r = _one("skip_fused fps -25%..-15%", None, lat)
    assert r["details"]["latency_setting"]["batch"] == 4 and r["verdict"] == "supported"


def test_evaluate_claims_other_forms():
    seeds = _seed_rows({"all_mlp": 0, "skip_fused": 0.025})
    assert evaluate_claims([], seeds, None, baseline="all_mlp") == []
    (single,) = evaluate_claims("skip_fused miou +2%..+3%", seeds, None, baseline="all_mlp", n_resamples=200)
    assert single["n"] == 10
    r = _one(Claim("skip_fused", "miou", (0.02, 0.03)).to_dict(), seeds)
    assert r["claim"] == "skip_fused miou +2%..+3%"
    r = _one("skip_fused miou +2%..+3% vs all_mlp", seeds, baseline=None)
    assert r["baseline"] == "all_mlp" and r["n"] == 10
    r = _one("skip_fused miou +2%..+3%", seeds, baseline=None)
    assert r["verdict"] == "inconclusive" and "no baseline" in r["reason"]
    r = _one("all_mlp miou +2%..+3%", seeds)
    assert "baseline itself" in r["reason"]
    with pytest.raises(ClaimError):
        evaluate_claims(["skip_fused miou 3..2"], seeds, None, baseline="all_mlp")


def test_inconclusive_reason_names_seeds_to_settle_and_power():
    seeds = _seed_rows({"all_mlp": 0, "skip_fused": 0.03}, n_seeds=4, sd_diff=0.01)
    r = _one("skip_fused miou +2%..+3%", seeds)
    assert r["verdict"] == "inconclusive"
    assert "paired seeds would settle it" in r["reason"] and "power" in r["reason"]
    assert r["seeds_needed"] >= 2 and r["seeds_to_settle"] > 4


def test_methods_text_mentions_each_method():
    for word in ("t-test", "Wilcoxon", "permutation", "BCa", "TOST", "Holm", "d_z", "g_av", "TTestPower",
                 "ratio of sums", "(1 − 2α)"):
        assert word in METHODS, word


def test_analysis_stats_modules_do_not_import_torch():
    import subprocess

    code = "import sys, analysis.stats, analysis.power, analysis.claims; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
