"""ablate plan: pilot -> probabilities, seeds, bands, hours; checked against a simulation of the full procedure."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_paired

from ablate.study.claim import Claim
from analysis import plan_study, sequential
from analysis.estimators.effects import paired_effects
from analysis.planning import plan as planning

BAND = (0.02, 0.03)
LOG_BAND = (math.log1p(0.02), math.log1p(0.03))


def write_pilot(root, *, n_seeds=3, effect=0.025, sd=0.006, acc_effect=0.01, seconds=None, seed=0, variants=None):
    """A pilot run dir: all_mlp baseline, skip_fused with a planted log-ratio effect on miou and pixel_acc."""
    rng = np.random.default_rng(seed)
    seconds = seconds or {"all_mlp": 100.0, "skip_fused": 140.0, "progressive": 120.0}
    variants = variants or ["all_mlp", "skip_fused"]
    rows = []
    for s in range(n_seeds):
        base_miou, base_acc = 0.5 + 0.02 * rng.standard_normal(), 0.8 + 0.01 * rng.standard_normal()
        shared = rng.standard_normal()
        for v in variants:
            d = 0.0 if v == "all_mlp" else effect + sd * (0.6 * shared + 0.8 * rng.standard_normal())
            a = 0.0 if v == "all_mlp" else acc_effect + sd * (0.6 * shared + 0.8 * rng.standard_normal())
            rows.append({"study": "s", "variant": v, "phase": "seed", "seed": s, "split": "test", "status": "ok",
                         "miou": base_miou * math.exp(d), "pixel_acc": base_acc * math.exp(a),
                         "train_seconds": seconds[v]})
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    (root / "study.json").write_text(json.dumps({"name": "s", "baseline": "all_mlp"}))
    return root


CLAIMS = [Claim("skip_fused", "miou", band=BAND, relative=True),
          Claim("skip_fused", "fps", band=(-0.25, -0.15), relative=True)]


def test_without_a_pilot_it_says_how_to_make_one(tmp_path):
    with pytest.raises(planning.PlanError, match=r"--preset pilot.*3 seeds"):
        plan_study(tmp_path / "nope", CLAIMS)
    with pytest.raises(planning.PlanError, match="need >= 2"):
        plan_study(write_pilot(tmp_path / "one", n_seeds=1), CLAIMS)


def test_sd_upper_bound_covers_the_true_sd_80_percent_of_the_time():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 3))
    ucb = np.array([planning.sd_upper_bound(s, 3, 0.8) for s in x.std(axis=1, ddof=1)])
    assert np.mean(ucb >= 1.0) == pytest.approx(0.80, abs=0.01)


def test_plan_reads_the_pilot_and_skips_speed_claims(tmp_path):
    pilot = write_pilot(tmp_path / "pilot", n_seeds=4)
    plan = plan_study(pilot, CLAIMS, seeds=10, n_sim=4000)
    (cp,) = plan.claims
    rows = pd.read_csv(pilot / "results.csv")
    wide = rows.pivot(index="seed", columns="variant", values="miou")
    x = np.log(wide["skip_fused"] / wide["all_mlp"])
    assert cp.estimate == pytest.approx(x.mean()) and cp.sd == pytest.approx(x.std(ddof=1))
    assert cp.sd_plan == pytest.approx(x.std(ddof=1) * math.sqrt(3 / stats.chi2.ppf(0.2, 3)))
    assert plan.seconds_per_run == {"all_mlp": 100.0, "skip_fused": 140.0}
    (hp,) = plan.hypotheses
    assert hp.hours["budget"] == pytest.approx(10 * 240 / 3600)
    assert any("fps" in s and "latency" in s for s in plan.skipped)
    text = planning.format_plan(plan)
    assert "skip_fused miou" in text and "seeds needed" in text and "expected with --until-settled" in text
    # the hypothesis of one seed-based claim is that claim
    assert hp.fixed["band middle"]["supported"] == pytest.approx(cp.fixed["band middle"]["supported"], abs=0.02)


def _full_procedure_fixed(effects, band, alpha):
    """The fixed-n verdict by the libraries: statsmodels TOST (supported), scipy two-sided t interval (refuted)."""
    n = effects.shape[-1]
    sup = np.array([ttost_paired(e, np.zeros(n), band[0], band[1])[0] <= alpha for e in effects])
    m, se = effects.mean(axis=1), effects.std(axis=1, ddof=1) / math.sqrt(n)
    c = stats.t.isf(alpha / 2, n - 1)
    ref = (m - c * se > band[1]) | (m + c * se < band[0])
    return sup, ref


def test_plan_probabilities_agree_with_a_simulation_of_the_full_procedure(tmp_path):
    pilot = write_pilot(tmp_path / "pilot", n_seeds=5, sd=0.004)
    seeds = 8
    plan = plan_study(pilot, [CLAIMS[0]], seeds=seeds, look_every=1, n_sim=20_000, random_state=1)
    (cp,) = plan.claims
    rng = np.random.default_rng(42)
    design = sequential.SequentialDesign.every(max_seeds=seeds, look_every=1)
    for name, effect in (("band middle", sum(LOG_BAND) / 2), ("pilot estimate", cp.estimate)):
        x = effect + cp.sd_plan * rng.standard_normal((3000, seeds))
        sup, ref = _full_procedure_fixed(x, LOG_BAND, 0.05)
        assert cp.fixed[name]["supported"] == pytest.approx(sup.mean(), abs=0.03)
        assert cp.fixed[name]["refuted"] == pytest.approx(ref.mean(), abs=0.03)
        # the sequential rule, look by look on the slow path
        final = [sequential.decide_sequence(row, LOG_BAND, design)[-1] for row in x[:1500]]
        assert cp.sequential[name]["supported"] == pytest.approx(np.mean([f.decision == "supported" for f in final]),
                                                                 abs=0.03)
        assert cp.sequential[name]["expected_seeds"] == pytest.approx(np.mean([f.n for f in final]), rel=0.05)


def test_hypothesis_of_two_correlated_claims_agrees_with_the_full_procedure(tmp_path):
    pilot = write_pilot(tmp_path / "pilot", n_seeds=6, sd=0.004, acc_effect=0.012)
    claims = [Claim("skip_fused", "miou", band=BAND, relative=True),
              Claim("skip_fused", "pixel_acc", band=(0.0, 0.025), relative=True)]
    seeds = 10
    plan = plan_study(pilot, claims, seeds=seeds, n_sim=20_000, random_state=2)
    (hp,) = plan.hypotheses
    cov = planning.planning_covariance(plan.claims, {
        cp.claim: paired_effects(pd.read_csv(pilot / "results.csv").assign(
            status="ok", phase="seed"), c, "all_mlp") for cp, c in zip(plan.claims, claims)})
    assert cov[0, 1] != 0  # the pilot's correlation is used
    bands = [cp.band for cp in plan.claims]
    means = [sum(b) / 2 for b in bands]
    x = planning.simulate_effects(means, cov, 3000, seeds, np.random.default_rng(5))
    sup = np.ones(3000, dtype=bool)
    ref = np.zeros(3000, dtype=bool)
    for k, band in enumerate(bands):
        s, r = _full_procedure_fixed(x[k], band, 0.05)
        sup &= s
        ref |= r
    assert hp.fixed["band middle"]["supported"] == pytest.approx(sup.mean(), abs=0.03)
    assert hp.fixed["band middle"]["refuted"] == pytest.approx(ref.mean(), abs=0.03)
    need = hp.seeds_needed["supported 80% (fixed n, band middle)"]
    assert need is not None and need >= max(cp.seeds_needed["supported 80% (fixed n, band middle)"]
                                            for cp in plan.claims)


def test_two_hypotheses_are_planned_at_bonferroni_alpha(tmp_path):
    pilot = write_pilot(tmp_path / "pilot", n_seeds=4, variants=["all_mlp", "skip_fused", "progressive"])
    claims = [Claim("skip_fused", "miou", band=BAND, relative=True),
              Claim("progressive", "miou", band=BAND, relative=True)]
    plan = plan_study(pilot, claims, seeds=6, n_sim=2000)
    assert [h.alpha for h in plan.hypotheses] == [0.025, 0.025]
    by_variant = {h.variant: h for h in plan.hypotheses}
    assert by_variant["skip_fused"].hours["budget"] == pytest.approx(6 * 240 / 3600)
    assert by_variant["progressive"].hours["budget"] == pytest.approx(6 * 220 / 3600)


def test_plan_command_line(tmp_path):
    import subprocess
    import sys

    from test_sweep import tiny_study

    study = tiny_study(tmp_path, name="tiny", trials=0)
    missing = subprocess.run([sys.executable, "-m", "ablate", "plan", str(study), "--out", str(tmp_path / "runs")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "ablate run STUDY --preset pilot" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    pilot = write_pilot(tmp_path / "runs" / "tiny-pilot", n_seeds=3)
    from click.testing import CliRunner

    from ablate.cli import cli

    done = CliRunner().invoke(cli, ["plan", str(study), "--out", str(tmp_path / "runs"), "--seeds", "6", "--json"])
    assert done.exit_code == 0, done.output
    plan = json.loads(done.output)
    assert plan["pilot"] == str(pilot) and plan["seeds"] == 6 and plan["claims"][0]["claim"].startswith("skip_fused miou")


def test_hours_are_rescaled_from_the_pilot_protocol(tmp_path):
    pilot = write_pilot(tmp_path / "pilot", n_seeds=3)
    (pilot / "study.json").write_text(json.dumps({"baseline": "all_mlp", "train": {"epochs": 6},
                                                  "image_size": [128, 160]}))
    plan = plan_study(pilot, [CLAIMS[0]], seeds=4, n_sim=1000,
                               protocol={"epochs": 15, "image_size": [256, 256]})
    scale = 15 / 6 * 256 * 256 / (128 * 160)
    assert plan.seconds_per_run["skip_fused"] == pytest.approx(140 * scale)
    assert any("scaled" in w for w in plan.warnings)


def test_a_pilot_with_confusions_plans_the_test_set_error_as_fixed(tmp_path):
    from analysis_runs import make_run_dir

    from analysis.estimators import verdict_power as power

    pilot = make_run_dir(tmp_path / "pilot", n_seeds=3, n_images=20, latency=False, epochs=False)
    claim = Claim("skip_fused", "miou", band=(0.02, 0.12), relative=True)
    plan = plan_study(pilot, [claim], baseline="all_mlp", seeds=10, n_sim=2000)
    (cp,) = plan.claims
    assert cp.se_fixed > 0 and any("test-set" in w for w in plan.warnings)
    without = power.verdict_probabilities(sum(cp.band) / 2, sd=cp.sd_plan, n=10, band=cp.band, alpha=0.05)
    assert cp.fixed["band middle"]["supported"] <= without["supported"]
    assert cp.smallest_band > power.smallest_settleable_band(sd=cp.sd_plan, n=10) * 1.001
    assert f"test-set SE {cp.se_fixed:.4f}" in planning.format_plan(plan)
