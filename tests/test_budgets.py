"""Budgets: study expansion, per-budget verdicts, the interaction test against hand computations, flips, plots,
and a budgets study end to end on synthetic scenes (fake trainer by default; the real trainer marked slow)."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pandas as pd
import pytest

from ablate.study.claim import Claim
from analysis import analyze_budgets
from analysis.plots import effect_vs_budget, save
from analysis.sections import budgets as B

BAND = (0.02, 0.03)


def seed_table(effects: dict[str, float], *, n_seeds=6, sd=0.004, seed=0) -> pd.DataFrame:
    """Seed rows for all_mlp / skip_fused at each budget with planted log-ratio effects."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_seeds):
        for budget, effect in effects.items():
            base = 0.5 + 0.03 * rng.standard_normal()
            rows.append({"variant": f"all_mlp@{budget}", "seed": s, "miou": base})
            rows.append({"variant": f"skip_fused@{budget}", "seed": s,
                         "miou": base * math.exp(effect + sd * rng.standard_normal())})
    return pd.DataFrame(rows)


CLAIM = Claim("skip_fused", "miou", band=BAND, relative=True)


def test_a_verdict_that_flips_with_the_budget_is_said_plainly():
    seeds = seed_table({"6ep": -0.13, "15ep": 0.025}, sd=0.002)
    (res,) = B.budget_claims(seeds, [CLAIM], baseline="all_mlp", budgets=["6ep", "15ep"])
    verdicts = {b.budget: (b.verdict, b.direction) for b in res.budgets}
    assert verdicts == {"6ep": ("refuted", "wrong direction"), "15ep": ("supported", None)}
    assert res.flips and "flips with the training budget" in res.summary
    assert res.interaction["p"] < 1e-6


def test_same_effect_at_every_budget_does_not_flip():
    seeds = seed_table({"6ep": 0.025, "15ep": 0.025, "40ep": 0.025}, sd=0.002, seed=3)
    (res,) = B.budget_claims(seeds, [CLAIM], baseline="all_mlp", budgets=["6ep", "15ep", "40ep"])
    assert not res.flips and "supported at every budget" in res.summary
    assert res.interaction["p"] > 0.01 and res.interaction["df"][0] == 2.0


@pytest.mark.parametrize("sizes", [(7, 7, 7), (5, 9), (4, 6, 8, 12)])
def test_interaction_is_welchs_anova_on_the_per_budget_estimates(sizes):
    # per-budget estimates with se^2 = s^2/n and df n - 1: statsmodels' Welch ANOVA of the raw groups
    from statsmodels.stats.oneway import anova_oneway

    rng = np.random.default_rng(len(sizes))
    groups = [rng.normal(0.01 * j, 0.01 * (1 + j), n) for j, n in enumerate(sizes)]
    effects = [B.BudgetEffect(str(j), len(g), g.mean(), (math.nan, math.nan), math.nan, math.nan,
                              se=g.std(ddof=1) / math.sqrt(len(g)), df=len(g) - 1) for j, g in enumerate(groups)]
    it = B.interaction_test(effects)
    ref = anova_oneway(groups, use_var="unequal", welch_correction=True)
    assert it["F"] == pytest.approx(ref.statistic) and it["p"] == pytest.approx(ref.pvalue)
    assert it["df"] == pytest.approx([ref.df_num, ref.df_denom])


def test_per_budget_p_values_match_statsmodels():
    from statsmodels.stats.weightstats import DescrStatsW

    x = np.array([0.021, 0.028, 0.024, 0.027, 0.022])
    e = B.budget_effect(x, (math.log1p(0.02), math.log1p(0.03)), "b", 0.05)
    assert e.p_supported == pytest.approx(DescrStatsW(x).ttost_mean(math.log1p(0.02), math.log1p(0.03))[0])
    claims = [CLAIM, Claim("progressive", "miou", band=BAND, relative=True)]
    seeds = seed_table({"6ep": 0.025}, sd=0.004)
    prog = seeds[seeds["variant"] == "skip_fused@6ep"].assign(variant="progressive@6ep")
    res = B.budget_claims(pd.concat([seeds, prog]), claims, baseline="all_mlp", budgets=["6ep"])
    assert len(res) == 2 and all(r.budgets[0].n == 6 for r in res)


def test_plot_returns_axes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    seeds = seed_table({"6ep": -0.13, "15ep": 0.025}, sd=0.01)
    (res,) = B.budget_claims(seeds, [CLAIM], baseline="all_mlp", budgets=["6ep", "15ep"])
    ax = effect_vs_budget.plot_effect_vs_budget(res)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["6ep", "15ep"]
    paths = save(effect_vs_budget.plot_budget_figure([res], "miou"), tmp_path, "budgets_miou")
    assert paths["png"].stat().st_size > 5000


BUDGET_STUDY = """
from ablate.study import Claim, Study, Variant
study = Study(
    name="bud",
    data={"kind": "synthetic", "n_train": 4, "n_val": 2, "n_test": 2, "size": (32, 32)},
    image_size=(32, 32), pretrained=None,
    variants={"all_mlp": Variant("all_mlp"), "skip_fused": Variant("skip_fused")},
    baseline="all_mlp", train={"epochs": 1, "batch_size": 2, "amp": "off"},
    seeds=[0, 1, 2, 3], threads=1,
    claims=[Claim("skip_fused", "miou", band=(0.02, 0.03)), Claim("skip_fused", "fps", band=(-0.25, -0.15))],
    latency={"rounds": 2, "warmup": 1, "threads": 1},
    presets={"budgets": {"budgets": {"short": {"train": {"epochs": 1}},
                                     "long": {"train": {"epochs": 2}, "image_size": (32, 32)}}}},
)
"""


def test_study_budgets_expand_into_variants_and_claims(tmp_path):
    from ablate.study.definition import load_study

    path = tmp_path / "bud.py"
    path.write_text(BUDGET_STUDY)
    study = load_study(path, preset="budgets")
    assert sorted(study.variants) == ["all_mlp@long", "all_mlp@short", "skip_fused@long", "skip_fused@short"]
    assert study.baseline == "all_mlp@short"
    assert {(c.variant, c.baseline, c.metric) for c in study.claims} == {
        (f"skip_fused@{b}", f"all_mlp@{b}", m) for b in ("short", "long") for m in ("miou", "fps")}
    assert study.train_settings("skip_fused@long", seed=0)["epochs"] == 2
    assert study.train_settings("skip_fused@short", seed=0)["epochs"] == 1
    assert study.to_dict()["budgets"]["long"]["train"] == {"epochs": 2}
    plain = load_study(path)
    assert sorted(plain.variants) == ["all_mlp", "skip_fused"]
    bad = tmp_path / "bad.py"
    bad.write_text(BUDGET_STUDY.replace('"image_size": (32, 32)}', '"img": 3}'))
    from ablate.errors import StudyError

    with pytest.raises(StudyError, match="budgets.long"):
        load_study(bad, preset="budgets")


def _run(study, out, env, *extra):
    from test_sweep import ablate_run

    done = subprocess.run(ablate_run(study, out, *extra), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_budgets_study_end_to_end_with_a_fake_trainer(tmp_path):
    from test_sweep import fake_env

    path = tmp_path / "bud.py"
    path.write_text(BUDGET_STUDY)
    env = fake_env()
    # the effect depends on the budget: log effect 0.25 + 0.075 * (epochs - 4) -> 0.025 at 1 epoch, 0.1 at 2
    env.update(ABLATE_TRAINER="fake_effect_trainer", ABLATE_FAKE_EFFECTS="skip_fused=0.25",
               ABLATE_FAKE_EPOCH_EFFECT="0.075", ABLATE_FAKE_SD="0.002")
    _run(path, tmp_path / "runs", env, "--preset", "budgets")
    run = tmp_path / "runs" / "bud-budgets"
    out = analyze_budgets(run)
    (claim,) = out["claims"]
    assert out["budgets"] == ["short", "long"] and claim["claim"] == "skip_fused miou +2%..+3%"
    assert [b["budget"] for b in claim["budgets"]] == ["short", "long"]
    assert all(b["n"] == 4 for b in claim["budgets"])
    assert [(b["verdict"], b["direction"]) for b in claim["budgets"]] == [("supported", None), ("refuted", "too large")]
    assert claim["flips"] and "flips with the training budget" in out["text"]
    assert (run / "report" / "budgets.json").is_file() and (run / "report" / "plots" / "budgets_miou.png").is_file()
    assert json.loads((run / "report" / "budgets.json").read_text())["text"] == out["text"]
    # the section agrees with analyze's verdict table (the same claim verdicts)
    from analysis import analyze

    table = {c["variant"]: c for c in analyze(run, write=False)["claims"] if c["metric"] == "miou"}
    for b in claim["budgets"]:
        cv = table[f"skip_fused@{b['budget']}"]
        assert b["verdict"] == cv["verdict"] and b["estimate"] == pytest.approx(cv["test_estimate"])


@pytest.mark.slow
def test_budgets_study_end_to_end_with_the_real_trainer(tmp_path):
    import os

    path = tmp_path / "bud.py"
    path.write_text(BUDGET_STUDY)
    env = dict(os.environ)
    _run(path, tmp_path / "runs", env, "--preset", "budgets", "--threads", "1")
    out = analyze_budgets(tmp_path / "runs" / "bud-budgets")
    (claim,) = out["claims"]
    assert [b["n"] for b in claim["budgets"]] == [4, 4]
    assert np.isfinite(claim["budgets"][0]["estimate"]) and out["text"]


def test_analyze_prints_the_budget_section(tmp_path):
    from click.testing import CliRunner

    from analysis.cli import analyze_command

    run = tmp_path / "run"
    run.mkdir()
    seeds = seed_table({"6ep": -0.13, "15ep": 0.025}, sd=0.002)
    seeds.assign(phase="seed", status="ok", split="test").to_csv(run / "results.csv", index=False)
    claims = [Claim(f"skip_fused@{b}", "miou", band=BAND, baseline=f"all_mlp@{b}").to_dict() for b in ("6ep", "15ep")]
    (run / "study.json").write_text(json.dumps({"name": "s", "baseline": "all_mlp@6ep", "claims": claims,
                                                "budgets": {"6ep": {"train": {"epochs": 6}},
                                                            "15ep": {"train": {"epochs": 15}}}}))
    done = CliRunner().invoke(analyze_command, [str(run), "--no-report", "--n-boot", "200"])
    assert done.exit_code == 0, done.output
    assert "budgets (does the verdict hold" in done.output and "flips with the training budget" in done.output


def test_plot_survives_a_budget_without_an_interval():
    import matplotlib

    matplotlib.use("Agg")
    res = B.BudgetClaim("skip_fused miou +2%..+3%", "skip_fused", "miou", True, (0.0198, 0.0296),
                        budgets=[B.BudgetEffect("a", 1, math.nan, (math.nan, math.nan), math.nan, math.nan),
                                 B.BudgetEffect("b", 4, 0.02, (0.01, 0.03), 0.2, 0.9)])
    ax = effect_vs_budget.plot_effect_vs_budget(res)
    assert np.all(np.isfinite(ax.get_ylim()))
