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


# --------------------------------------------------------------------------- issue 18 defect 3: one rule


def exact_pilot(root, *, sds: dict, n_seeds: int, effect: float = 0.025):
    """A seeds-only pilot whose paired log ratios have exactly mean ``effect`` and sd ``sds[variant]``."""
    rows = []
    for s in range(n_seeds):
        rows.append({"study": "s", "variant": "all_mlp", "phase": "seed", "seed": s, "split": "test", "status": "ok",
                     "miou": 0.5, "train_seconds": 100.0})
    for k, (variant, sd) in enumerate(sds.items()):
        z = np.random.default_rng(k).standard_normal(n_seeds)
        d = effect + sd * (z - z.mean()) / z.std(ddof=1)
        rows += [{"study": "s", "variant": variant, "phase": "seed", "seed": s, "split": "test", "status": "ok",
                  "miou": 0.5 * math.exp(d[s]), "train_seconds": 140.0} for s in range(n_seeds)]
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    (root / "study.json").write_text(json.dumps({"name": "s", "baseline": "all_mlp"}))
    return root


def realised(sd: float, seeds: int, band, runs: int, *, variants=("skip_fused",), seed=0) -> tuple[float, float]:
    """(P(claim supported), P(first hypothesis supported)) of analyze's claim engine (analysis.verdicts.rules.evaluate)
    over simulated studies whose per-seed log ratios are N(band middle, sd): the realised frequencies."""
    from analysis.verdicts.rules import ClaimData, evaluate

    rng = np.random.default_rng(seed)
    claims = [Claim(v, "miou", band=BAND) for v in variants]
    claim_sup = hyp_sup = 0
    for _ in range(runs):
        rows = [{"variant": "all_mlp", "seed": s, "miou": 0.5, "run_id": f"b{s}"} for s in range(seeds)]
        for v in variants:
            d = sum(LOG_BAND) / 2 + sd * rng.standard_normal(seeds)
            rows += [{"variant": v, "seed": s, "miou": 0.5 * math.exp(d[s]), "run_id": f"{v}{s}"} for s in range(seeds)]
        hyps, cvs = evaluate(claims, ClaimData(seeds=pd.DataFrame(rows)), baseline="all_mlp", with_power=False)
        claim_sup += cvs[0].verdict == "supported"
        hyp_sup += hyps[0].verdict == "supported"
    return claim_sup / runs, hyp_sup / runs


def test_claims_are_planned_at_alpha_as_analyze_judges_them(tmp_path, monkeypatch):
    # two hypotheses: the plan's claim figure is at alpha (analyze's claim rule), its hypotheses at alpha / 2
    import gc

    monkeypatch.setattr(gc, "collect", lambda *a: 0)  # multipletests' gc.collect, 1000 times
    pilot = exact_pilot(tmp_path / "pilot", sds={"skip_fused": 0.004, "progressive": 0.004}, n_seeds=4)
    claims = [Claim("skip_fused", "miou", band=BAND), Claim("progressive", "miou", band=BAND)]
    plan = plan_study(pilot, claims, seeds=6, n_sim=4000, random_state=3)
    predicted = plan.claims[0].fixed_pilot_sd["band middle"]["supported"]
    claim_rate, _ = realised(0.004, 6, BAND, 400, variants=("skip_fused", "progressive"))
    assert predicted == pytest.approx(claim_rate, abs=0.08)  # issue 18: planned at alpha / m: 0.42, not 0.65


def test_a_one_claim_hypothesis_gets_the_claims_figure_with_a_test_set_part(tmp_path):
    # issue 18: 0.640 as a claim and 0.463 as a hypothesis (two df rules for one fixed-n rule)
    from analysis_runs import make_run_dir

    pilot = make_run_dir(tmp_path / "pilot", variants=("all_mlp", "skip_fused"), n_seeds=3, n_images=40,
                         image_sd=0.04, latency=False, epochs=False, claims=[])
    claim = Claim("skip_fused", "miou", band=(0.0, 0.14))
    plan = plan_study(pilot, [claim], seeds=4, n_sim=20_000, random_state=4)
    (cp,), (hp,) = plan.claims, plan.hypotheses
    assert cp.se_fixed > 0 and np.isfinite(cp.image_df)
    for name in ("band middle", "pilot estimate"):
        for key in ("supported", "refuted"):
            assert hp.fixed[name][key] == pytest.approx(cp.fixed[name][key], abs=0.015)


def test_hypotheses_include_speed_parts_and_the_output_states_the_sd_caveat(tmp_path):
    from analysis_runs import make_run_dir

    pilot = make_run_dir(tmp_path / "pilot", variants=("all_mlp", "skip_fused"), n_seeds=3, n_images=20,
                         n_launches=3, epochs=False, claims=[])
    claims = [Claim("skip_fused", "miou", band=(0.0, 0.14)), Claim("skip_fused", "fps", band=(-0.25, -0.15))]
    plan = plan_study(pilot, claims, seeds=5, n_sim=20_000, random_state=5)
    (hp,) = plan.hypotheses
    miou, fps = plan.claims
    assert hp.claims == [miou.claim, fps.claim] and fps.unit == "launches" and fps.seeds == 3
    # independent measurements: the intersection-union is the product of the parts
    for name in ("band middle", "pilot estimate"):
        assert hp.fixed[name]["supported"] == pytest.approx(
            miou.fixed[name]["supported"] * fps.fixed[name]["supported"], abs=0.015)
    text = planning.format_plan(plan)
    assert "80% upper confidence bound" in text and "too high in about 20 %" in text and "pilot's own sd" in text
    own = miou.fixed_pilot_sd["band middle"]["supported"]
    assert f"[{100 * own:.0f} %]" in text


@pytest.mark.slow
@pytest.mark.parametrize("sd, seeds", [(0.004, 6), (0.006, 10)])
def test_plan_predictions_match_realised_frequencies_at_the_pilots_true_sd(tmp_path, monkeypatch, sd, seeds):
    import gc
    import sys

    monkeypatch.setattr(gc, "collect", lambda *a: 0)
    pilot = exact_pilot(tmp_path / "pilot", sds={"skip_fused": sd}, n_seeds=3)
    plan = plan_study(pilot, [Claim("skip_fused", "miou", band=BAND)], seeds=seeds, n_sim=20_000,
                               random_state=6)
    runs = 4000
    claim_rate, hyp_rate = realised(sd, seeds, BAND, runs, seed=seeds)
    predicted = (plan.claims[0].fixed_pilot_sd["band middle"]["supported"],
                 plan.hypotheses[0].fixed_pilot_sd["band middle"]["supported"])
    print(f"\n[sim] plan P(supported) claim {predicted[0]:.4f} / hypothesis {predicted[1]:.4f} vs realised "
          f"{claim_rate:.4f} / {hyp_rate:.4f} over {runs} studies (sd {sd}, {seeds} seeds)", file=sys.stderr)
    assert abs(predicted[0] - claim_rate) <= 0.03 and abs(predicted[1] - hyp_rate) <= 0.03
