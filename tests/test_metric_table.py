"""The one metric table (ablate.rundir.metrics): every reader follows it, an absolute Dice claim prints in
points like mIoU, per-class IoU is a pattern, and adding a metric is one entry."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from analysis_runs import make_run_dir

from ablate.rundir import metrics
from ablate.rundir.metrics import Metric, format_band, format_effect, format_interval, is_latency


def test_every_fraction_metric_prints_in_points_mean_dice_included():
    # the defect: mean_dice was a result metric but not a "fraction metric", so +0.0123 printed raw
    from analysis.report.text import band_text, effect_text

    claim = {"metric": "mean_dice", "relative": False, "estimate": 0.0123, "ci": [0.0041, 0.0205], "band": [0.01, 0.03]}
    assert effect_text(claim) == "+1.23 pts [+0.41, +2.05]"
    assert band_text(claim) == "+1..+3 pts"
    for name in ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice", "iou_Car"):
        assert format_effect(0.0123, name, relative=False) == "+1.23 pts", name


def test_relative_effects_and_the_test_scale():
    assert format_effect(0.073, "miou", relative=True, ci=[-0.003, 0.155]) == "+7.3 % [-0.3, +15.5]"
    # on the estimators' (log-ratio) scale: log(1.1) is +10 %
    assert format_effect(math.log(1.1), "fps", relative=True, test_scale=True) == "+10.0 %"
    assert format_interval([math.log(0.8), math.log(0.9)], "fps", relative=True, test_scale=True) == "[-20.0, -10.0] %"
    assert format_effect(12.34, "fps", relative=False) == "+12.3 img/s"
    assert format_effect(0.02, "miou", relative=False, signed=False) == "2.00 pts"
    assert format_effect(float("nan"), "miou", relative=True) == "—"
    assert format_band([-0.25, -0.15], "fps", relative=True) == "-25..-15 %"


def test_per_class_iou_is_a_pattern_for_any_class_name():
    m = metrics.find_metric("iou_traffic_light")
    assert m is not None and m.label == "IoU of traffic_light" and m.source == metrics.RESULTS and m.is_fraction
    assert metrics.find_metric("iou_") is None and metrics.find_metric("mIoU") is None


def test_the_study_validator_and_analyze_read_the_same_table():
    from ablate.study.claim import Claim, ClaimError, validate_claim_against

    names = metrics.claimable_metrics()
    for name in [*metrics.METRICS, "iou_Car"]:
        validate_claim_against(Claim("a", name, band=(0.01, 0.02)), variants=["a", "b"], metrics=names)
    with pytest.raises(ClaimError, match="unknown metric 'params_m'"):
        validate_claim_against(Claim("a", "params_m", band=(0.01, 0.02)), variants=["a", "b"], metrics=names)
    assert is_latency("fps") and not is_latency("miou") and not is_latency("iou_Car")


def test_adding_a_metric_is_one_entry(tmp_path, monkeypatch):
    """A new results.csv column becomes claimable, numeric, labelled and printed in its unit from one entry."""
    from analysis import analyze
    from analysis.report.text import effect_text, metric_name

    monkeypatch.setitem(metrics.METRICS, "boundary_f1", Metric("boundary_f1", "boundary F1"))
    run = make_run_dir(tmp_path / "run", n_seeds=4, n_images=10, confusion=False, latency=False)
    results = pd.read_csv(run / "results.csv")
    shift = results["variant"].map({"skip_fused": 0.02}).fillna(0.0)
    noise = np.random.default_rng(0).normal(0, 0.002, len(results))
    results["boundary_f1"] = (0.6 + shift + noise).astype(str)  # written as text: the reader coerces it
    results.to_csv(run / "results.csv", index=False)

    verdicts = analyze(run, claims=["skip_fused boundary_f1 +1..+3"], write=False, n_boot=200)
    claim = verdicts["claims"][0]
    assert claim["metric"] == "boundary_f1" and claim["estimate"] == pytest.approx(0.02, abs=0.005)
    assert "pts" in claim["reason"]
    assert metric_name("boundary_f1") == "boundary F1"
    assert re.fullmatch(r"\+[12]\.\d\d pts \[\+\d\.\d\d, \+\d\.\d\d\]", effect_text(claim))
