"""Many-variant statistics: P(most accurate) over seeds x images, the Pareto front, and the one
seeds x images estimator checked against a two-way ANOVA (statsmodels) and against itself on levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from analysis.estimators.effects import seeds_by_images, two_way_effect, two_way_level
from analysis.estimators.ranking import pareto_front, prob_most_accurate


def confusions(rng, quality, seeds, image_effects, *, classes=3, pixels=400, seed_sd=0.02, noise_sd=0.02):
    """Per seed, per-image confusions [N, C, C]: accuracy = quality + seed part + image part + noise."""
    out = {}
    for s in seeds:
        seed_part = rng.normal(0, seed_sd)
        acc = np.clip(quality + seed_part + image_effects + rng.normal(0, noise_sd, image_effects.size), 0.05, 0.99)
        cm = np.zeros((image_effects.size, classes, classes))
        for k in range(classes):
            right = acc * pixels
            cm[:, k, k] = right
            cm[:, k, (k + 1) % classes] = pixels - right
        out[s] = cm
    return out


def test_pareto_front_exact():
    acc = {"a": 0.5, "b": 0.6, "c": 0.55, "d": 0.6, "e": float("nan")}
    cost = {"a": 1.0, "b": 3.0, "c": 3.5, "d": 3.0, "e": 0.1}
    assert sorted(pareto_front(acc, cost)) == ["a", "b", "d"]  # c: b is better and cheaper; e: no accuracy


def test_prob_most_accurate_identical_variants_split_evenly():
    rng = np.random.default_rng(0)
    images = rng.normal(0, 0.05, 30)
    a = confusions(rng, 0.6, range(4), images)
    p = prob_most_accurate({"a": a, "b": dict(a)}, n_resamples=200, random_state=1)
    assert p == {"a": 0.5, "b": 0.5}


def test_prob_most_accurate_matches_the_two_way_estimator_for_two_variants():
    # reference: for two variants, P(A best) ~ Phi(effect / se) of the paired seeds x images estimator
    rng = np.random.default_rng(3)
    images = rng.normal(0, 0.06, 60)
    seeds = range(8)
    a = confusions(rng, 0.60, seeds, images + rng.normal(0, 0.03, images.size))
    b = confusions(rng, 0.595, seeds, images)
    est = two_way_effect([a[s] for s in seeds], [b[s] for s in seeds], relative=False)
    expected = float(special.ndtr(est.estimate / est.se))
    assert 0.6 < expected < 0.97  # a case that is not settled either way
    p = prob_most_accurate({"a": a, "b": b}, n_resamples=4000, random_state=0)
    assert p["a"] + p["b"] == pytest.approx(1.0)
    assert p["a"] == pytest.approx(expected, abs=0.06)


def test_prob_most_accurate_three_variants_orders_them():
    rng = np.random.default_rng(5)
    images = rng.normal(0, 0.03, 40)
    cms = {name: confusions(rng, q, range(5), images) for name, q in (("low", 0.5), ("mid", 0.6), ("top", 0.7))}
    p = prob_most_accurate(cms, n_resamples=500, random_state=0)
    assert p["top"] > 0.99 and p["low"] == 0.0


def test_seeds_by_images_equals_two_way_anova_on_a_linear_statistic():
    # For a per-seed mean over images, se^2 = (MS_seed + MS_image - MS_residual) / (S N): statsmodels' ANOVA.
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(7)
    S, N = 6, 25
    x = rng.normal(0, 1, (S, 1)) * 0.5 + rng.normal(0, 1, (1, N)) + rng.normal(0, 0.3, (S, N))
    per_seed = x.mean(1)
    loo = (x.sum(1, keepdims=True) - x) / (N - 1)
    est = seeds_by_images(per_seed, loo)
    frame = pd.DataFrame({"y": x.ravel(), "seed": np.repeat(np.arange(S), N), "image": np.tile(np.arange(N), S)})
    table = anova_lm(smf.ols("y ~ C(seed) + C(image)", frame).fit())
    ms = table["mean_sq"]
    reference = (ms["C(seed)"] + ms["C(image)"] - ms["Residual"]) / (S * N)
    assert est.se**2 == pytest.approx(reference, rel=1e-10)
    assert est.estimate == pytest.approx(x.mean())


def test_two_way_level_is_the_paired_estimator_without_a_baseline():
    rng = np.random.default_rng(11)
    images = rng.normal(0, 0.05, 30)
    a = confusions(rng, 0.6, range(5), images)
    level = two_way_level([a[s] for s in range(5)])
    assert level.n == 5 and level.se > 0 and np.isfinite(level.df)
    lo, hi = level.interval(0.9)
    assert lo < level.estimate < hi
    with pytest.raises(ValueError, match="different images"):
        two_way_level([a[0], a[1][:10]])


def test_prob_most_accurate_on_plain_per_seed_values_resamples_seeds_only():
    top = {s: 0.6 + 0.01 * s for s in range(4)}
    low = {s: 0.5 + 0.01 * s for s in range(4)}
    assert prob_most_accurate({"top": top, "low": low}, n_resamples=300, random_state=0) == {"top": 1.0, "low": 0.0}
    close = {s: 0.5 + 0.01 * s + (0.02 if s == 0 else -0.001) for s in range(4)}  # wins only where seed 0 is drawn
    p = prob_most_accurate({"close": close, "low": low}, n_resamples=4000, random_state=0)
    # the paired difference is +0.02 on seed 0, -0.001 on the others: mean > 0 iff seed 0 is drawn at least once
    # with enough weight; exact: P(sum of draws' differences > 0) by enumerating multinomial(4, 1/4) outcomes
    from itertools import product
    d = np.array([0.02, -0.001, -0.001, -0.001])
    wins = np.mean([d[list(c)].sum() > 0 for c in product(range(4), repeat=4)])
    assert p["close"] == pytest.approx(wins, abs=0.02)


def test_claimless_many_variant_report_has_the_accuracy_cost_view(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from analysis_runs import make_run_dir

    import analysis

    run = make_run_dir(tmp_path / "zoo", claims=[], n_seeds=4, n_images=30)
    verdicts = analysis.analyze(run, n_boot=500)
    section = verdicts["accuracy_cost"]
    assert section["available"] and section["most_accurate"] == "skip_fused"  # the planted +3.5 points
    assert section["variants"]["skip_fused"]["p_most_accurate"] > 0.95
    assert "unet_r34" not in section["pareto"]["gflops"]  # the planted loss at the highest cost
    lo, hi = section["variants"]["all_mlp"]["ci"]
    assert lo < section["variants"]["all_mlp"]["miou"] < hi
    report = (run / "report" / "report.md").read_text()
    opening = report.split("## Verdicts")[0]
    assert "No claims were stated" in opening and "Most accurate: skip_fused" in opening
    assert "## Accuracy vs cost" in report
    for name in ("accuracy_vs_gflops", "accuracy_vs_fps", "most_accurate"):
        assert (run / "report" / "plots" / f"{name}.png").stat().st_size > 5000
        assert f"plots/{name}.png" in report
    two = make_run_dir(tmp_path / "two", variants=("all_mlp", "skip_fused"), claims=[], n_seeds=3, n_images=20)
    assert not analysis.analyze(two, n_boot=200, write=False)["accuracy_cost"]["available"]
