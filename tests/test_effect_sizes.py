"""The effect-size table (analysis.estimators.effect_sizes): each entry against an independent reference, one
table behind both the claim path and the comparison path, and adding an effect size is one entry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from analysis.estimators import effect_sizes as sizes


def test_cliffs_delta_by_brute_force_pair_counting():
    rng = np.random.default_rng(3)
    v, b = np.round(rng.normal(0.6, 0.02, 9), 2), np.round(rng.normal(0.59, 0.02, 9), 2)  # rounding: ties happen
    greater = sum(1 for x in v for y in b if x > y)
    less = sum(1 for x in v for y in b if x < y)
    assert sizes.effect_sizes(v, b)["cliffs_delta"] == pytest.approx((greater - less) / (len(v) * len(b)), abs=1e-15)


def test_cliffs_delta_against_scipys_mann_whitney_u():
    # delta = 2 U / (n m) - 1 with U counting ties half (scipy's U of the first sample)
    rng = np.random.default_rng(4)
    v, b = rng.integers(0, 5, 12).astype(float), rng.integers(0, 5, 12).astype(float)
    u = sps.mannwhitneyu(v, b).statistic
    assert sizes.effect_sizes(v, b)["cliffs_delta"] == pytest.approx(2 * u / (12 * 12) - 1, abs=1e-12)
    assert sizes.effect_sizes([1.0, 2.0], [3.0, 4.0])["cliffs_delta"] == -1.0  # complete separation


def test_arms_only_sizes_are_nan_from_differences_alone():
    out = sizes.effect_sizes(diff=[0.1, 0.3, -0.1, 0.2])
    assert out["d_z"] == pytest.approx(np.mean([0.1, 0.3, -0.1, 0.2]) / np.std([0.1, 0.3, -0.1, 0.2], ddof=1))
    assert out["paired_win_rate"] == 0.75
    assert math.isnan(out["g_av"]) and math.isnan(out["cliffs_delta"])
    assert all(math.isnan(x) for x in sizes.effect_sizes().values())


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    from analysis_runs import make_run_dir

    from analysis import analyze

    run = make_run_dir(tmp_path_factory.mktemp("es") / "run", n_seeds=6, n_images=12, confusion=False)
    return analyze(run, claims=["skip_fused miou +2%..+12%"], write=False, n_boot=200)


def test_the_claim_path_and_the_comparison_path_give_the_same_sizes(verdicts):
    claim = verdicts["claims"][0]
    row = next(c for c in verdicts["comparisons"] if c["variant"] == "skip_fused")
    assert set(claim["effect_sizes"]) == set(sizes.EFFECT_SIZES)
    for name, value in claim["effect_sizes"].items():
        assert row[name] == pytest.approx(value), name


def test_adding_an_effect_size_is_one_entry(tmp_path, monkeypatch):
    from analysis_runs import make_run_dir

    from analysis import analyze

    monkeypatch.setitem(sizes.EFFECT_SIZES, "mean_ratio",
                        lambda p: float(np.mean(p.variant / p.baseline)) if p.variant is not None else math.nan)
    run = make_run_dir(tmp_path / "run", n_seeds=4, n_images=10, confusion=False)
    out = analyze(run, claims=["skip_fused miou +2%..+12%", "skip_fused fps -25%..-15%"], write=False, n_boot=200)
    miou, fps = out["claims"]
    assert miou["effect_sizes"]["mean_ratio"] > 1 and fps["effect_sizes"]["mean_ratio"] is None  # NaN in verdicts.json
    assert next(c for c in out["comparisons"] if c["variant"] == "skip_fused")["mean_ratio"] > 1
