"""Issue 18: one report row, one interval model; one seed filter; one latency-setting rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from analysis_runs import make_run_dir

from analysis import analyze

ABS = {"variant": "skip_fused", "metric": "miou", "band": [0.01, 0.03], "relative": False, "baseline": None}
REL = {"variant": "skip_fused", "metric": "miou", "band": [0.02, 0.06], "relative": True, "baseline": None}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run_dir(tmp_path_factory.mktemp("run"), n_seeds=4, n_images=60, image_sd=0.05, latency=False,
                        epochs=False, claims=[ABS])


def test_defect_4_relative_column_of_an_absolute_claim_is_the_claims_own_interval(run):
    from analysis.report.text import claim_effects

    absolute = analyze(run, claims=[ABS], write=False, n_boot=0)["claims"][0]
    relative = analyze(run, claims=[REL], write=False, n_boot=0)["claims"][0]
    assert "seeds x 60 test images" in absolute["ci_method"]
    # the same runs stated relative: the same estimator, the same interval
    assert absolute["estimate_rel"] == pytest.approx(relative["estimate"])
    assert absolute["ci_rel"] == pytest.approx(relative["ci"])
    rel_text, _ = claim_effects(absolute)
    lo, hi = relative["ci"]
    assert rel_text == f"{100 * relative['estimate']:+.1f} % [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def test_defect_4_forest_rows_without_a_claim_use_analyzes_estimator(run):
    from analysis.plots.forest import forest_rows

    verdicts = analyze(run, claims=[ABS], write=False, n_boot=0)
    rows = {r["label"].split(" miou")[0]: r for r in forest_rows(verdicts) if "no claim" in r["label"]}
    assert set(rows) == {"progressive", "unet_r34"}
    for variant, row in rows.items():  # a relative claim on that variant has the same (1 - alpha) interval
        claim = {**REL, "variant": variant}
        cv = analyze(run, claims=[claim], write=False, n_boot=0)["claims"][0]
        assert row["estimate"] == pytest.approx(cv["estimate"])
        assert row["ci_wide"] == pytest.approx(cv["ci_refute"])


def test_defect_8_the_gate_counts_a_pair_only_when_seed_rows_keeps_it(tmp_path):
    # an ok row without a finite mIoU is not a complete pair (the gate's own filter counted it)
    from ablate.study.claim import Claim
    from analysis import SeedGate

    rows = []
    for s in range(5):
        for v, m in (("a", 0.5 + 0.01 * s), ("b", 0.51 + 0.01 * s + 0.001 * (s % 2))):
            rows.append({"variant": v, "seed": s, "phase": "seed", "status": "ok", "split": "test", "run_id": f"{v}{s}",
                         "miou": math.nan if (v, s) == ("b", 1) else m})
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    gate = SeedGate([Claim("b", "miou", band=(0.0, 0.05))], "a", list(range(8)), max_seeds=6)
    record = gate.evaluate(tmp_path)
    assert record["pairs"] == [0, 2, 3, 4]


def test_defect_8_one_latency_setting_rule_includes_threads():
    from ablate.engine.latency_stats import LATENCY_SETTING_COLUMNS, launch_ratio_table
    from analysis.run_reader import latency_settings

    rows = [{"variant": v, "launch": 0, "round": r, "batch": 1, "height": 64, "width": 64, "dtype": "fp32",
             "mode": "eager", "device": "cpu", "threads": t, "ms_per_image": ms * (2 if t == 1 else 1)}
            for t in (1, 4) for r in range(3) for v, ms in (("a", 10.0), ("b", 12.0))]
    bench = launch_ratio_table(rows, "a")
    analysis_settings = latency_settings(pd.DataFrame(rows))
    assert "threads" in LATENCY_SETTING_COLUMNS
    assert len(analysis_settings) == 2 == len({tuple(sorted(t["setting"].items())) for t in bench})
    assert {t["threads"] for t in bench} == {1, 4}
    assert np.allclose([t["ms_median"] for t in bench if t["variant"] == "a"], [20.0, 10.0])


def test_defect_5_the_report_says_how_few_seeds_are_handled(run):
    # the df rule for few seeds is rendered in the report's Methods, not only in a docstring
    analyze(run, claims=[ABS], write=True, n_boot=0)
    md = (run / "report" / "report.md").read_text()
    assert "lowered where few seeds make them optimistic" in md and "87 % at a nominal 90 % with 3 seeds" in md
