"""The claim engine (analysis.verdicts.rules): one regression test per defect of issue 8, hypotheses, wording.

Each ``test_defect_N_*`` reproduces the issue's case and fails on the engine before the rebuild.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from analysis_runs import make_run_dir

from ablate.study.claim import Claim, ClaimError
from analysis import analyze
from analysis.estimators.effects import launch_effect, seed_effect
from analysis.estimators.verdict_power import seeds_needed, verdict_probabilities
from analysis.run_reader import claim_latency_rows
from analysis.verdicts.records import ClaimVerdict, Verdict
from analysis.verdicts.rules import ClaimData, band_on_test_scale, decide, evaluate, judge, judge_hypotheses


def seeds_frame(values: dict[str, list[float]], metric="miou") -> pd.DataFrame:
    rows = [{"variant": v, "seed": s, metric: x, "run_id": f"{v}-{s}", "status": "ok", "phase": "seed",
             "split": "test"} for v, xs in values.items() for s, x in enumerate(xs)]
    return pd.DataFrame(rows)


def with_exact_mean_sd(n, mean, sd, seed=0):
    z = np.random.default_rng(seed).normal(size=n)
    return mean + sd * (z - z.mean()) / z.std(ddof=1)


def one_claim(claim, data, baseline="base", alpha=0.05):
    hypotheses, claims = evaluate([claim], data, baseline=baseline, alpha=alpha)
    return hypotheses[0], claims[0]


# --------------------------------------------------------------------------- defect 1: one quantity for speed


def test_defect_1_speed_estimate_interval_test_and_verdict_are_one_quantity():
    # 30 rounds; in 6 slow rounds (everything at 20 ms) the variant is not slower. The old engine showed a
    # BCa interval of the ratio of summed times (-10.5 %) but tested per-round log ratios (-15.7 %).
    rng = np.random.default_rng(0)
    rows = []
    for r in range(30):
        slow = r < 6
        base = (20.0 if slow else 10.0) * math.exp(rng.normal(0, 0.01))
        var = base if slow else base / 0.80 * math.exp(rng.normal(0, 0.01))
        rows += [{"variant": "base", "launch": r % 5, "round": r, "ms_per_image": base},
                 {"variant": "var", "launch": r % 5, "round": r, "ms_per_image": var}]
    latency = pd.DataFrame(rows)
    data = ClaimData(seeds=None, latency=latency)
    _, cv = one_claim(Claim("var", "fps", (-0.155, -0.06)), data)
    per_round = np.log(latency[latency.variant == "base"].ms_per_image.to_numpy()
                       / latency[latency.variant == "var"].ms_per_image.to_numpy())
    assert cv.estimate == pytest.approx(math.expm1(per_round.mean()))  # the estimate is the tested mean
    assert math.log1p(cv.ci[0]) + math.log1p(cv.ci[1]) == pytest.approx(2 * per_round.mean())  # its interval
    inside = -0.155 <= cv.ci[0] and cv.ci[1] <= -0.06
    assert inside == (cv.p_equivalence <= 0.05) == (cv.verdict == Verdict.SUPPORTED)
    assert cv.n_unit == "launches" and cv.n == 5


# --------------------------------------------------------------------------- defect 2: one latency setting


def _two_setting_latency():
    rng = np.random.default_rng(1)
    rows = []
    for dtype, rounds, ratio in (("fp32", 30, 0.794), ("bf16", 10, 0.975)):
        for r in range(rounds):
            base = 10 * math.exp(rng.normal(0, 0.01))
            for variant, ms in (("base", base), ("var", base / ratio * math.exp(rng.normal(0, 0.01)))):
                rows.append({"variant": variant, "launch": r % 2, "round": r, "batch": 1, "height": 256, "width": 256,
                             "dtype": dtype, "mode": "eager", "threads": 1, "device": "cpu", "ms_per_image": ms})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("declared, expected", [("fp32", -0.206), ("bf16", -0.025)])
def test_defect_2_speed_claims_use_the_studys_declared_setting(declared, expected):
    latency = _two_setting_latency()
    study = {"latency": {"claim_setting": {"batch": 1, "height": 256, "width": 256, "dtype": declared,
                                           "mode": "eager"}}}
    warnings: list[str] = []
    rows, setting, reason = claim_latency_rows(latency, study, warnings)
    assert reason is None and set(rows["dtype"]) == {declared} and setting["dtype"] == declared
    _, cv = one_claim(Claim("var", "fps", (-0.25, -0.15)), ClaimData(seeds=None, latency=rows,
                                                                   latency_setting=setting))
    assert cv.estimate == pytest.approx(expected, abs=0.01)
    assert cv.details["latency_setting"]["dtype"] == declared


def test_defect_2_analyze_reports_the_same_setting_it_judges(tmp_path):
    run = make_run_dir(tmp_path / "run", n_seeds=3, n_images=8)
    latency = _two_setting_latency()
    latency["variant"] = latency["variant"].map({"base": "all_mlp", "var": "skip_fused"})
    latency.to_csv(run / "latency.csv", index=False)
    study = json.loads((run / "study.json").read_text())
    study["latency"]["claim_setting"]["dtype"] = "fp32"
    (run / "study.json").write_text(json.dumps(study))
    verdicts = analyze(run, n_boot=200, write=False)
    claim = next(c for c in verdicts["claims"] if c["metric"] == "fps")
    assert claim["details"]["latency_setting"]["dtype"] == verdicts["latency"]["setting"]["dtype"] == "fp32"
    assert {s["setting"]["dtype"] for s in verdicts["latency"]["settings"]} == {"fp32", "bf16"}  # reported
    ratio = verdicts["latency"]["ratio_vs_baseline"]["skip_fused"]["rel_change"]
    assert ratio == pytest.approx(claim["estimate"])  # the latency section uses the claim's own estimator


def test_old_run_dir_without_claim_setting_uses_the_most_common_and_warns():
    warnings: list[str] = []
    rows, setting, _ = claim_latency_rows(_two_setting_latency(), {}, warnings)
    assert setting["dtype"] == "fp32" and set(rows["dtype"]) == {"fp32"}
    assert warnings and "claim_setting" in warnings[0]


def test_no_rows_at_the_declared_setting_is_inconclusive_naming_what_was_found():
    study = {"latency": {"claim_setting": {"batch": 4, "height": 256, "width": 256, "dtype": "fp32",
                                           "mode": "eager"}}}
    rows, _, reason = claim_latency_rows(_two_setting_latency(), study, [])
    assert rows is None and "batch=4" in reason and "found" in reason


# --------------------------------------------------------------------------- defect 3: refuted at level alpha


@pytest.mark.parametrize("n, sd", [(5, 0.05), (3, 0.1)])
def test_defect_3_refuted_at_most_alpha_for_a_true_effect_inside_the_band(n, sd):
    # The issue: true +2.5 % inside +2..+3 %: old P(refuted) = 0.065 (n 5, sd 0.05) and 0.088 (n 3, sd 0.1).
    rng = np.random.default_rng(2)
    band_x = band_on_test_scale(Claim("v", "miou", (0.02, 0.03)))
    truth = math.log(1.025)
    runs = 6000
    refuted = 0
    for _ in range(runs):
        base = rng.uniform(0.5, 0.6, n)
        variant = base * np.exp(truth + rng.normal(0, sd, n))
        refuted += decide(seed_effect(variant, base, relative=True), band_x, 0.05)[0] == Verdict.REFUTED
    assert refuted / runs <= 0.05 + 0.01


# --------------------------------------------------------------------------- defect 4: power of the rule used


def test_defect_4_power_and_seeds_are_those_of_the_verdict_rule():
    # A narrow band and a clear superiority effect: the old power (one-sided t at the band edge) said ~100 %.
    n, sd = 6, 0.02
    base = np.full(n, 0.5)
    variant = base * np.exp(with_exact_mean_sd(n, math.log(1.025), sd))
    data = ClaimData(seeds=seeds_frame({"v": variant.tolist(), "base": base.tolist()}))
    _, cv = one_claim(Claim("v", "miou", (0.02, 0.03)), data)
    band_x = band_on_test_scale(Claim("v", "miou", (0.02, 0.03)))
    mid = sum(band_x) / 2
    assert cv.p_superiority < 0.05  # superiority alone is easy here ...
    expected = verdict_probabilities(mid, sd=cv.sd, n=n, band=band_x)["supported"]
    assert cv.power == pytest.approx(expected) and cv.power < 0.2  # ... the claim's own rule is not
    assert cv.seeds_needed == seeds_needed(mid, sd=cv.sd, band=band_x) and cv.seeds_needed > n
    p = verdict_probabilities(cv.test_estimate, sd=cv.sd, n=cv.seeds_to_settle, band=band_x)
    assert p["supported"] + p["refuted"] >= 0.8


# --------------------------------------------------------------------------- defect 5: seeds x images


def test_defect_5_mIoU_verdict_uses_seed_and_image_uncertainty(tmp_path):
    run = make_run_dir(tmp_path / "run", n_seeds=8, n_images=40, image_sd=0.05, latency=False,
                       claims=[{"variant": "skip_fused", "metric": "miou", "band": [0.0, 0.25], "relative": True}])
    verdicts = analyze(run, n_boot=200, write=False)
    claim = verdicts["claims"][0]
    assert "test images" in claim["ci_method"] and claim["image_share"] > 0.3
    seeds = pd.read_csv(run / "results.csv")
    pivot = seeds.pivot_table(index="seed", columns="variant", values="miou")
    seeds_only = seed_effect(pivot["skip_fused"], pivot["all_mlp"], relative=True)
    assert claim["se"] > 1.2 * seeds_only.se  # the test set's share is in the verdict's interval
    two_way = verdicts["test_set"]["paired_vs_baseline"]["skip_fused"]
    assert two_way["var_image"] > 0 and two_way["seeds"] == list(range(8))  # every seed, not the lowest one


def test_without_confusions_the_interval_falls_back_to_seeds_with_a_warning(tmp_path):
    run = make_run_dir(tmp_path / "run", n_seeds=4, n_images=8, confusion=False, latency=False)
    verdicts = analyze(run, n_boot=200, write=False)
    claim = verdicts["claims"][0]
    assert claim["ci_method"].startswith("paired t over seeds")
    assert any("seeds only" in w for w in verdicts["warnings"])


# --------------------------------------------------------------------------- defect 6: launches


def test_defect_6_speed_interval_comes_from_launches(tmp_path):
    run = make_run_dir(tmp_path / "run", n_seeds=3, n_images=8, n_launches=4, n_rounds=5)
    verdicts = analyze(run, n_boot=200, write=False)
    claim = next(c for c in verdicts["claims"] if c["metric"] == "fps")
    assert claim["n_unit"] == "launches" and claim["n"] == 4 and claim["df"] == 3
    assert len(claim["details"]["per_unit"]) == 4


def test_launch_effect_absolute_fps_uses_the_same_units():
    rows = pd.DataFrame([{"variant": v, "launch": launch, "round": r, "ms_per_image": ms * (1 + 0.01 * launch)}
                         for launch in range(3) for r in range(4) for v, ms in (("a", 10.0), ("b", 12.5))])
    est, _ = launch_effect(rows, "b", "a", relative=False)
    assert est.unit == "launches" and est.n == 3
    assert est.estimate == pytest.approx(np.mean([1000 / (12.5 * (1 + 0.01 * k)) - 1000 / (10 * (1 + 0.01 * k))
                                                  for k in range(3)]))


# --------------------------------------------------------------------------- defect 7: hypotheses


def _part(variant, metric, p_eq, p_ref=0.9, verdict=Verdict.INCONCLUSIVE):
    return ClaimVerdict(claim=f"{variant} {metric} +2%..+3%", hypothesis=f"{variant} vs base", variant=variant,
                        baseline="base", metric=metric, band=[0.02, 0.03], p_equivalence=p_eq, p_refute=p_ref,
                        verdict=verdict, reading="inside the band")


def test_defect_7_one_verdict_per_hypothesis_by_intersection_union():
    # "+2-3 % mIoU for -20 % speed": both parts' TOST p ~ 0.027; the old engine put them in one Holm family
    # (both inconclusive); the intersection-union test gives p = 0.028 -> supported.
    parts = [_part("skip", "miou", 0.027, verdict=Verdict.SUPPORTED),
             _part("skip", "fps", 0.028, verdict=Verdict.SUPPORTED)]
    (h,) = judge_hypotheses(parts, alpha=0.05)
    assert h.verdict == Verdict.SUPPORTED and h.p_supported == h.p_supported_holm == pytest.approx(0.028)
    assert "Holm" not in h.reason
    # Holm across variants (hypotheses), not across claims
    other = _part("prog", "miou", 0.04, verdict=Verdict.SUPPORTED)
    hs = judge_hypotheses([*parts, other], alpha=0.05)
    assert [h.n_hypotheses for h in hs] == [2, 2]
    assert hs[0].p_supported_holm == pytest.approx(0.056) and hs[0].verdict == Verdict.INCONCLUSIVE
    assert "Holm-adjusted across 2 hypotheses" in hs[0].reason


def test_hypothesis_refuted_by_one_part_with_holm_within():
    parts = [_part("skip", "miou", 0.5, p_ref=0.02, verdict=Verdict.REFUTED), _part("skip", "fps", 0.01)]
    parts[0].direction = "too small"
    (h,) = judge_hypotheses(parts, alpha=0.05)
    assert h.p_refuted == pytest.approx(0.04) and h.verdict == Verdict.REFUTED
    assert h.refuted_by == ["skip miou +2%..+3% (too small)"]


def test_a_single_claim_never_says_holm():
    data = ClaimData(seeds=seeds_frame({"v": [0.52, 0.53, 0.525, 0.531], "base": [0.5, 0.51, 0.505, 0.5]}))
    h, cv = one_claim(Claim("v", "miou", (0.0, 0.1)), data)
    assert "Holm" not in cv.reason and "Holm" not in h.reason


# --------------------------------------------------------------------------- defect 8 and the smaller items


def test_defect_8_identical_differences_same_answer_for_absolute_and_relative_bands():
    base = [0.50, 0.52, 0.55, 0.49]
    data = ClaimData(seeds=seeds_frame({"v": [b + 0.01 for b in base], "base": base}))
    verdicts = evaluate([Claim("v", "miou", (0.0, 0.02), relative=False), Claim("v", "miou", (0.0, 0.04))],
                        data, baseline="base")[1]
    assert [c.verdict for c in verdicts] == [Verdict.INCONCLUSIVE] * 2
    assert all("identical" in c.reason for c in verdicts)


def test_effect_sizes_use_the_paired_win_rate_name():
    data = ClaimData(seeds=seeds_frame({"v": [0.52, 0.53, 0.49], "base": [0.5, 0.51, 0.5]}))
    _, cv = one_claim(Claim("v", "miou", (0.0, 0.1)), data)
    assert cv.effect_sizes["paired_win_rate"] == pytest.approx(2 / 3) and "prob_improvement" not in cv.effect_sizes


def test_a_study_file_with_an_empty_band_fails_at_load(tmp_path):
    from test_study import GOOD

    from ablate.errors import StudyError
    from ablate.study import load_study

    path = tmp_path / "study.py"
    path.write_text(GOOD.replace("band=(0.02, 0.03)", "band=(0.02, 0.02)"))
    with pytest.raises(StudyError, match="lower bound must be below"):
        load_study(path)


# --------------------------------------------------------------------------- wording and Bayesian reading


def test_inconclusive_says_what_the_data_show_first_then_what_would_settle_it():
    # The real study: progressive +2..+3 % had its 90 % CI wholly above the band but was "inconclusive".
    n = 6
    base = np.full(n, 0.5)
    variant = base * np.exp(with_exact_mean_sd(n, 0.10, 0.03 * math.sqrt(n)))
    data = ClaimData(seeds=seeds_frame({"progressive": variant.tolist(), "base": base.tolist()}))
    _, cv = one_claim(Claim("progressive", "miou", (0.02, 0.03)), data)
    assert cv.verdict == Verdict.INCONCLUSIVE and cv.reading == "larger than claimed"
    assert cv.reason.startswith("larger than claimed: the 90 % CI [")
    assert "wholly above the band" in cv.reason and "95 % CI" in cv.reason
    assert f"about {cv.seeds_to_settle} seeds would settle it" in cv.reason
    assert "only a band about" in cv.reason and np.isfinite(cv.smallest_band)


def test_supported_and_refuted_reasons_name_the_interval_and_p():
    data = ClaimData(seeds=seeds_frame({"v": [0.55, 0.56, 0.555, 0.552], "base": [0.5, 0.51, 0.505, 0.5]}))
    _, sup = one_claim(Claim("v", "miou", (0.05, 0.15)), data)
    _, ref = one_claim(Claim("v", "miou", (0.2, 0.3)), data)
    assert sup.verdict == Verdict.SUPPORTED and sup.reason.startswith("inside the band") and "TOST p" in sup.reason
    assert ref.verdict == Verdict.REFUTED and ref.direction == "too small" and ref.reason.startswith("smaller than")


def test_posterior_is_the_same_t_as_the_interval():
    data = ClaimData(seeds=seeds_frame({"v": [0.52, 0.53, 0.525, 0.531, 0.52], "base": [0.5, 0.51, 0.505, 0.5, 0.51]}))
    _, cv = one_claim(Claim("v", "miou", (0.02, 0.04)), data)
    post = cv.posterior
    assert post["below"] + post["inside"] + post["above"] == pytest.approx(1.0)
    # the posterior probability above the band's lower edge = 1 - the one-sided TOST p at that edge
    est = seed_effect(np.array([0.52, 0.53, 0.525, 0.531, 0.52]), np.array([0.5, 0.51, 0.505, 0.5, 0.51]),
                      relative=True)
    assert post["below"] == pytest.approx(est.tost(*band_on_test_scale(Claim("v", "miou", (0.02, 0.04))))["p_low"])


def test_thin_data_gives_inconclusive_with_a_reason_never_an_exception():
    data = ClaimData(seeds=seeds_frame({"v": [0.52], "base": [0.5]}))
    _, cv = one_claim(Claim("v", "miou", (0.0, 0.1)), data)
    assert cv.verdict == Verdict.INCONCLUSIVE and "at least 2" in cv.reason
    _, cv = one_claim(Claim("v", "fps", (0.0, 0.1)), ClaimData(seeds=None, latency_reason="no latency rounds"))
    assert cv.verdict == Verdict.INCONCLUSIVE and "latency" in cv.reason
    json.dumps(cv.to_dict(), allow_nan=False)


def test_judge_without_power_for_simulations():
    est = seed_effect([0.52, 0.53, 0.525], [0.5, 0.51, 0.505], relative=True)
    cv = judge(Claim("v", "miou", (0.0, 0.1)), "base", est, {}, None, alpha=0.05, with_power=False)
    assert math.isnan(cv.power) and cv.verdict in tuple(Verdict)


def test_bad_claims_raise_claim_error():
    with pytest.raises(ClaimError):
        evaluate(["v miou lots"], ClaimData(seeds=None), baseline="base")


@pytest.mark.parametrize("n_launches", [0, 1])
def test_issue18_defect_6_one_latency_launch_gives_no_speed_verdict_only_the_reason(tmp_path, n_launches):
    run = make_run_dir(tmp_path / "run", n_seeds=3, n_images=8, n_launches=n_launches, n_rounds=8)
    v = analyze(run, write=False, n_boot=0)
    (fps,) = [c for c in v["claims"] if c["metric"] == "fps"]
    assert fps["verdict"] == "inconclusive" and not np.all(np.isfinite(np.asarray(fps["ci"] or [np.nan], float)))
    assert "no speed verdict" in fps["reason"] and "at least 2 launches" in fps["reason"]
    assert "skip_fused" not in v["latency"]["ratio_vs_baseline"]
