"""analysis.estimators.effects against references: scipy, statsmodels, and R values quoted by them.

The claim engine's rules are tested in test_analysis_claims.py; simulations with a known truth
in test_analysis_stats_sim.py; the verdict rule's power in test_analysis_power.py.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from ablate.errors import AblateError, StudyError
from ablate.rundir import json_safe
from ablate.study.claim import Claim, ClaimError, format_claim, parse_claim
from analysis.estimators.effect_sizes import hedges_correction
from analysis.estimators.effects import (
    METHODS,
    EffectEstimate,
    holm,
    jackknife_variance,
    launch_effect,
    leave_one_image_out,
    miou_from_confusion,
    paired_comparison,
    satterthwaite_df,
    seed_effect,
    two_way_effect,
    unit_effect,
)

# "clinic" data from statsmodels/stats/tests/test_tost.py (R package `equivalence` examples):
# rows 0-14 are group 1, rows 15-29 group 2 (paired by position).
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


# --------------------------------------------------------------------------- the interval engine: t and TOST


def test_tost_matches_r_equivalence_package():
    # R: tost(clinic$var2[1:15] - clinic$var2[16:30], eps=0.6) -> p 0.4412034046017588,
    # 90% CI (0.1261653305099018, 0.999168002823431) (statsmodels test_tost.py, tost_clinic_paired).
    d = _CLINIC_VAR2[:15] - _CLINIC_VAR2[15:]
    est = unit_effect(d)
    assert est.tost(-0.6, 0.6)["p"] == pytest.approx(0.4412034046017588, rel=1e-9)
    assert est.interval(0.90) == pytest.approx([0.1261653305099018, 0.999168002823431], rel=1e-9)
    d1 = _CLINIC_VAR1[:15] - _CLINIC_VAR1[15:]  # tost_clinic_paired_1 -> p 0.003166881489265175
    assert unit_effect(d1).tost(-0.6, 0.6)["p"] == pytest.approx(0.003166881489265175, rel=1e-9)


def test_relative_tost_matches_r_log_ratio_example():
    # R: tost(log(var1[1:15]), log(var1[16:30]), eps=log(1.25), paired=TRUE) -> p 0.0001664157928976468,
    # 90% CI of the mean log ratio (-0.02415225319362176, 0.1103969168386687) (statsmodels, tost_clinic_1_paired).
    est = seed_effect(_CLINIC_VAR1[:15], _CLINIC_VAR1[15:], relative=True)
    assert est.tost(math.log(0.8), math.log(1.25))["p"] == pytest.approx(0.0001664157928976468, rel=1e-8)
    assert est.interval(0.9) == pytest.approx([-0.02415225319362176, 0.1103969168386687], rel=1e-9)


def test_tost_matches_statsmodels_ttost_paired_absolute_and_relative():
    rng = np.random.default_rng(11)
    for _ in range(20):
        n = int(rng.integers(3, 25))
        b = rng.uniform(0.4, 0.7, n)
        v = b * np.exp(rng.normal(rng.normal(0.02, 0.02), rng.uniform(0.005, 0.05), n))
        lo, hi = sorted(rng.uniform(-0.05, 0.08, 2))
        ref = ttost_paired(v, b, lo, hi)
        got = seed_effect(v, b, relative=False).tost(lo, hi)
        assert got["p"] == pytest.approx(ref[0], rel=1e-9, abs=1e-15)
        assert got["t_low"] == pytest.approx(ref[1][0], rel=1e-9) and got["t_upp"] == pytest.approx(ref[2][0], rel=1e-9)
        ref = ttost_paired(v, b, 1 + lo, 1 + hi, transform=np.log)
        got = seed_effect(v, b, relative=True).tost(math.log1p(lo), math.log1p(hi))
        assert got["p"] == pytest.approx(ref[0], rel=1e-9, abs=1e-15)


def test_tost_with_satterthwaite_df_matches_statsmodels_ttost_ind():
    # An estimate with two variance components: ttost_ind(usevar="unequal") is Welch's TOST of x1 - x2,
    # se^2 = s1^2/n1 + s2^2/n2 with Satterthwaite df. The engine gives the same p from the same se and df.
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(0.3, 1.0, 7), rng.normal(0.0, 0.4, 25)
    v1, v2 = x1.var(ddof=1) / 7, x2.var(ddof=1) / 25
    est = EffectEstimate(x1.mean() - x2.mean(), math.sqrt(v1 + v2), satterthwaite_df([(v1, 6), (v2, 24)]), 7, 1.0)
    ref = ttost_ind(x1, x2, -0.5, 1.2, usevar="unequal")
    assert est.tost(-0.5, 1.2)["p"] == pytest.approx(ref[0], rel=1e-9)
    assert est.df == pytest.approx(ref[1][2], rel=1e-9)


def test_superiority_and_interval_match_scipy():
    rng = np.random.default_rng(12)
    for n in (2, 3, 10, 40):
        x = rng.normal(0.3, 1, n)
        est = unit_effect(x)
        for alt in ("two-sided", "greater", "less"):
            for null in (0.0, 0.2):
                ref = sps.ttest_1samp(x, null, alternative=alt).pvalue
                assert est.superiority(alt, null=null) == pytest.approx(ref, rel=1e-10)
        assert est.interval(0.9) == pytest.approx(list(sps.ttest_1samp(x, 0).confidence_interval(0.9)))


def test_refute_p_is_the_two_sided_interval_outside_the_band():
    rng = np.random.default_rng(4)
    for _ in range(50):
        est = unit_effect(rng.normal(rng.normal(0, 1), 1, int(rng.integers(3, 12))))
        lo, hi = sorted(rng.normal(0, 1, 2))
        ci = est.interval(0.95)
        outside = ci[0] > hi or ci[1] < lo
        assert (est.refute(lo, hi) <= 0.05) == outside


def test_posterior_matches_baycomp_student_posterior_with_shifted_rope():
    baycomp = pytest.importorskip("baycomp")
    from baycomp.single import Posterior

    rng = np.random.default_rng(5)
    for _ in range(5):
        x = rng.normal(0.02, 0.03, int(rng.integers(3, 15)))
        est = unit_effect(x)
        lo, hi = 0.01, 0.04
        centre, half = (lo + hi) / 2, (hi - lo) / 2
        # baycomp's Student posterior (mean, var of the mean, df) with a rope [-half, half] around 0:
        # shifting the mean by the band's centre puts the rope on the band.
        left, rope, right = Posterior(est.estimate - centre, est.se**2, est.df, rope=half).probs()
        got = est.posterior(lo, hi)
        assert got["below"] == pytest.approx(left, abs=1e-9)
        assert got["inside"] == pytest.approx(rope, abs=1e-9)
        assert got["above"] == pytest.approx(right, abs=1e-9)
    assert baycomp  # imported for the check above


def test_holm_is_statsmodels_multipletests_with_nans_outside_the_family():
    rng = np.random.default_rng(8)
    for m in (1, 2, 5, 12):
        p = rng.uniform(0, 0.2, m) ** 2
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], rel=1e-12)
    p = np.array([0.01, np.nan, 0.04, 0.03])
    got = holm(p)
    assert math.isnan(got[1]) and got[[0, 2, 3]] == pytest.approx(multipletests(p[[0, 2, 3]], method="holm")[1])
    assert holm([]).size == 0


def test_no_hand_written_holm_left_in_analysis():
    import pathlib

    import analysis

    root = pathlib.Path(analysis.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "np.maximum.accumulate" not in text, path
        assert "(m - rank)" not in text and "(m - np.arange(m))" not in text, path


# --------------------------------------------------------------------------- comparisons over seeds


def test_paired_comparison_matches_r_paired_t_test():
    # R: t.test(var1[1:15], var1[16:30], paired=TRUE) (statsmodels ttest_clinic_paired_1): p 0.245199929713149,
    # conf.int (-0.1264911434745851, 0.4558244768079186), estimate 0.1646666666666667.
    pc = paired_comparison(_CLINIC_VAR1[:15], _CLINIC_VAR1[15:], random_state=0, n_resamples=500)
    assert pc["mean_diff"] == pytest.approx(0.1646666666666667, rel=1e-12)
    assert pc["p_ttest"] == pytest.approx(0.245199929713149, rel=1e-9)
    assert pc["ci_t"] == pytest.approx([-0.1264911434745851, 0.4558244768079186], rel=1e-9)


def test_paired_comparison_matches_scipy_and_definitions():
    rng = np.random.default_rng(3)
    b = rng.normal(0.56, 0.01, 9)
    v = b + rng.normal(0.01, 0.006, 9)
    pc = paired_comparison(v, b, alpha=0.05, n_resamples=2000, random_state=42)
    d = v - b
    assert pc["p_ttest"] == pytest.approx(sps.ttest_rel(v, b).pvalue, rel=1e-12)
    assert pc["p_wilcoxon"] == pytest.approx(sps.wilcoxon(v, b).pvalue, rel=1e-12)
    signs = np.array(list(itertools.product([1, -1], repeat=d.size)))
    p_exact = np.mean(np.abs((signs * d).mean(1)) >= abs(d.mean()) - 1e-12)
    assert pc["permutation_exact"] is True and pc["p_permutation"] == pytest.approx(p_exact, rel=1e-9)
    ref = sps.bootstrap((d,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(42))
    assert pc["ci_bca"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], rel=1e-9)
    assert pc["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert pc["g_av"] == pytest.approx(d.mean() / ((v.std(ddof=1) + b.std(ddof=1)) / 2) * hedges_correction(8))
    lr = np.log(v / b)
    assert pc["rel_diff"] == pytest.approx(np.expm1(lr.mean()))
    lo, hi = sps.ttest_1samp(lr, 0).confidence_interval(0.95)
    assert pc["rel_ci"] == pytest.approx([np.expm1(lo), np.expm1(hi)])
    _strict_json(json_safe(pc))


def test_paired_win_rate_counts_ties_half_and_replaces_prob_improvement():
    pc = paired_comparison([1.0, 2.0, 3.0, 4.0], [0.5, 2.0, 3.5, 3.0], n_resamples=0)
    assert pc["paired_win_rate"] == pytest.approx((2 + 0.5) / 4)
    assert "prob_improvement" not in pc


def test_hedges_correction_exact_and_approximation():
    for df in (9, 19, 49):  # Hedges (1981) approximation 1 - 3/(4 df - 1)
        assert hedges_correction(df) == pytest.approx(1 - 3 / (4 * df - 1), abs=1e-3)
    assert hedges_correction(4) == pytest.approx(math.sqrt(2 / math.pi))
    assert math.isnan(hedges_correction(1))


@pytest.mark.parametrize("v, b", [([], []), ([0.5], [0.4]), ([0.5, 0.6], [0.4, 0.5]), ([0.5] * 3, [0.5] * 3),
                                  ([0.5, np.nan, 0.6], [0.4, 0.5, np.nan])])
def test_degenerate_inputs_never_raise(v, b):
    pc = paired_comparison(v, b, n_resamples=200, random_state=0)
    _strict_json(json_safe(pc))
    for relative in (True, False):
        est = seed_effect(v, b, relative=relative)
        assert not est.ok and math.isnan(est.tost(0, 1)["p"]) and math.isnan(est.interval(0.9)[0])


def test_json_safe():
    obj = {"a": np.float64("nan"), "b": (np.int64(3), np.inf), "c": np.array([1.5, np.nan]), "d": pd.NA}
    assert json_safe(obj) == {"a": None, "b": [3, None], "c": [1.5, None], "d": None}


# --------------------------------------------------------------------------- seeds x images


def _random_cms(rng, n=40, c=4, scale=400):
    cms = rng.poisson(scale / 20, (n, c, c)).astype(np.int64)
    cms[:, np.arange(c), np.arange(c)] += rng.poisson(scale, (n, c))
    cms[rng.random((n, c)) < 0.3] = 0
    return cms


def test_miou_is_a_ratio_of_sums_not_a_mean_of_per_image_ious():
    cm1, cm2 = np.array([[900, 100], [50, 950]]), np.array([[1, 9], [9, 1]])
    total = cm1 + cm2
    tp = np.diag(total)
    assert miou_from_confusion(total) == pytest.approx(np.mean(tp / (total.sum(0) + total.sum(1) - tp)))
    assert miou_from_confusion(np.array([[5, 1, 0], [1, 5, 0], [0, 0, 0]])) == pytest.approx(5 / 7)


def test_leave_one_image_out_and_jackknife_against_plain_loops():
    rng = np.random.default_rng(0)
    cms = _random_cms(rng)
    full, loo = leave_one_image_out(cms)
    assert full == pytest.approx(miou_from_confusion(cms.sum(0)))
    assert loo == pytest.approx([miou_from_confusion(np.delete(cms, i, 0).sum(0)) for i in range(len(cms))])
    x = rng.normal(size=30)  # for a mean the jackknife variance is exactly s^2 / n
    loo_mean = (x.sum() - x) / (x.size - 1)
    assert jackknife_variance(x.mean(), loo_mean) == pytest.approx(x.var(ddof=1) / x.size)


def test_two_way_effect_adds_the_test_set_part_that_seeds_cannot_shrink():
    rng = np.random.default_rng(1)
    n_img, c = 60, 4
    truth = rng.integers(200, 2000, (n_img, c))
    helps = rng.normal(0, 0.08, n_img)  # the variant helps on some images, hurts on others: an image effect
    cms_v, cms_b = [], []
    for _ in range(6):
        for shift, out in ((0.03 + helps, cms_v), (np.zeros(n_img), cms_b)):
            acc = np.clip(0.7 + shift[:, None] + rng.normal(0, 0.01), 0.05, 0.99)
            right = rng.binomial(truth, acc)
            cm = np.zeros((n_img, c, c), dtype=np.int64)
            cm[:, np.arange(c), np.arange(c)] = right
            cm[:, np.arange(c), (np.arange(c) + 1) % c] = truth - right
            out.append(cm)
    two = two_way_effect(cms_v, cms_b, relative=True)
    seeds_only = seed_effect([miou_from_confusion(c.sum(0)) for c in cms_v],
                             [miou_from_confusion(c.sum(0)) for c in cms_b], relative=True)
    assert two.estimate == pytest.approx(seeds_only.estimate)
    assert two.se > 1.5 * seeds_only.se and two.se_fixed > 0 and two.components["image_share"] > 0.5
    assert seeds_only.df < two.df < n_img  # Satterthwaite between the two components' df
    with pytest.raises(ValueError):
        two_way_effect(cms_v, [c[:10] for c in cms_b], relative=True)


# --------------------------------------------------------------------------- latency


def _latency_rows(launch_effects, rounds=10, ratio=0.8, sd=0.02, seed=0, launches=True):
    rng = np.random.default_rng(seed)
    rows = []
    for launch, shift in enumerate(launch_effects):
        for r in range(rounds):
            base = 10 * np.exp(rng.normal(0, sd))
            rows.append({"variant": "base", "launch": launch, "round": r, "ms_per_image": base})
            rows.append({"variant": "var", "launch": launch, "round": r,
                         "ms_per_image": base / ratio * math.exp(shift + rng.normal(0, sd))})
    frame = pd.DataFrame(rows)
    return frame if launches else frame.drop(columns="launch")


def test_launch_effect_is_t_over_per_launch_mean_log_ratios():
    rows = _latency_rows([0.0, 0.05, -0.03, 0.02])
    est, notes = launch_effect(rows, "var", "base", relative=True)
    wide = rows.pivot_table(index=["launch", "round"], columns="variant", values="ms_per_image")
    per_launch = np.log(wide["base"] / wide["var"]).groupby(level="launch").mean().to_numpy()
    assert est.unit == "launches" and est.n == 4 and not notes
    assert est.estimate == pytest.approx(per_launch.mean())
    assert est.interval(0.9) == pytest.approx(list(sps.ttest_1samp(per_launch, 0).confidence_interval(0.9)))


def test_speed_claims_and_the_bench_share_one_per_launch_ratio():
    """analysis' launch effect is the bench's (ablate.engine.latency_stats) geometric-mean ratio, in logs,
    also on rows a real run leaves: a NaN time, a round timed twice, a round only one model has."""
    from ablate.engine.latency_stats import launch_ratio_table

    rows = _latency_rows([0.0, 0.05, -0.03], rounds=6)
    extra = [{"variant": "var", "launch": 0, "round": 0, "ms_per_image": 20.0},  # timed twice: mean
             {"variant": "base", "launch": 1, "round": 2, "ms_per_image": float("nan")},
             {"variant": "var", "launch": 2, "round": 99, "ms_per_image": 11.0}]  # unpaired
    rows = pd.concat([rows, pd.DataFrame(extra)], ignore_index=True)
    est, _ = launch_effect(rows, "var", "base", relative=True)
    bench = [dict(r, dtype="fp32", batch=1, height=8, width=8) for r in rows.to_dict("records")]
    table = {t["variant"]: t for t in launch_ratio_table(bench, "base")}
    assert est.n == 3 and table["var"]["launches"] == 3
    assert est.estimate == pytest.approx(math.log(table["var"]["ratio_geomean"]), rel=1e-12)


@pytest.mark.parametrize("launches", [False, True])
def test_one_latency_launch_gives_no_interval_only_the_reason(launches):
    # issue 18 defect 6: rounds of one launch as units covered 0.58 at a nominal 0.90
    rows = _latency_rows([0.0], rounds=12, launches=launches)
    est, notes = launch_effect(rows, "var", "base", relative=True)
    assert est.unit == "launches" and est.n == 1 and not est.ok
    assert notes and "no speed verdict" in notes[0] and "at least 2 launches" in notes[0]


# --------------------------------------------------------------------------- claims: parsing and validation


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
    assert (got.variant, got.metric, got.relative, got.baseline) == (claim.variant, claim.metric, claim.relative,
                                                                     claim.baseline)
    assert got.band == pytest.approx(claim.band)
    assert parse_claim(format_claim(got)).band == pytest.approx(got.band)


@pytest.mark.parametrize(
    "text",
    ["", "skip_fused miou", "skip_fused miou 2%", "skip_fused miou 3%..2%", "skip_fused miou 2%..2%",
     "skip_fused miou 1%..0.02", "skip_fused miou -150%..-120%", "skip_fused miou a..b", "skip_fused miou 1..2 x"],
)
def test_parse_claim_errors_are_one_line_user_errors(text):
    with pytest.raises(ClaimError) as info:
        parse_claim(text)
    assert isinstance(info.value, StudyError) and isinstance(info.value, AblateError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("band", [(0.02, 0.02), (0.0, math.inf), (-math.inf, 0.1), (math.nan, 0.1), (0.1, 0.0)])
def test_every_claim_is_validated_where_it_is_made(band):
    """Defect 8: lo == hi or an infinite bound passed the study check and was dropped hours later."""
    with pytest.raises(ClaimError):
        Claim("skip_fused", "miou", band)
    with pytest.raises(ClaimError):
        Claim.from_dict({"variant": "skip_fused", "metric": "miou", "band": list(band)})


def test_methods_text_names_the_rules():
    for word in ("TOST", "Satterthwaite", "launch", "Holm", "intersection-union", "posterior", "win rate"):
        assert word.lower() in METHODS.lower()
