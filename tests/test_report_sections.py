"""verdicts.json carries the budgets and the --until-settled looks (computed once, by analyze), and the report
renders both right after the verdicts; the opening paragraph says when the verdict flips and when the study stopped."""

from __future__ import annotations

import json

from test_budgets import BAND, seed_table

from ablate.study.claim import Claim

BUDGETS = ("6ep", "15ep")


def make_run(tmp_path, *, budgets=True, looks=True):
    """A budgets run (flips: refuted at 6ep, supported at 15ep) with, optionally, looks.json from the real gate."""
    run = tmp_path / "run"
    run.mkdir()
    seeds = seed_table({"6ep": -0.13, "15ep": 0.025}, n_seeds=8, sd=0.002)
    seeds.assign(phase="seed", status="ok", split="test").to_csv(run / "results.csv", index=False)
    claims = [Claim(f"skip_fused@{b}", "miou", band=BAND, baseline=f"all_mlp@{b}") for b in BUDGETS]
    study = {"name": "s", "baseline": "all_mlp@6ep", "claims": [c.to_dict() for c in claims]}
    if budgets:
        study["budgets"] = {b: {"train": {"epochs": int(b[:-2])}} for b in BUDGETS}
    (run / "study.json").write_text(json.dumps(study))
    if looks:
        from analysis.sequential.gate import SeedGate

        SeedGate(claims, "all_mlp@6ep", list(range(12)), max_seeds=12, look_every=2)(run)
    return run


def test_analyze_puts_budgets_and_looks_in_verdicts_json(tmp_path):
    from analysis import analyze

    run = make_run(tmp_path)
    v = analyze(run, n_boot=200)
    on_disk = json.loads((run / "report" / "verdicts.json").read_text())
    assert on_disk["until_settled"] == json.loads((run / "looks.json").read_text())
    assert on_disk["budgets"]["flips"] == ["skip_fused miou +2%..+3%"]
    (claim,) = v["budgets"]["claims"]
    assert [(b["budget"], b["verdict"]) for b in claim["budgets"]] == [("6ep", "refuted"), ("15ep", "supported")]
    assert "flips with the training budget" in claim["headline"] and claim["interaction"]["p"] < 0.001
    # the earlier budgets.json still written, the same section
    assert json.loads((run / "report" / "budgets.json").read_text())["text"] == v["budgets"]["text"]


def test_report_renders_both_sections_after_the_verdicts_and_says_so_up_front(tmp_path):
    from analysis import analyze

    run = make_run(tmp_path)
    v = analyze(run, n_boot=200)
    md = (run / "report" / "report.md").read_text()
    opening = md.split("## Verdicts")[0]
    n = v["until_settled"]["looks"][-1]["n"]
    assert n < 12 and v["until_settled"]["stopped"]
    assert "the verdict flips with the training budget (6ep: refuted, wrong direction; 15ep: supported)" in opening
    assert f"stopped early, at {n} of at most 12 complete seed pairs" in opening
    at = {h: md.index(h) for h in ("## Verdicts", "## Sequential looks", "## Budgets", "## Methods")}
    assert at["## Verdicts"] < md.index("plots/forest.png") < at["## Sequential looks"] < at["## Budgets"] \
        < md.index("plots/budgets_miou.png") < at["## Methods"]
    looks = md[at["## Sequential looks"]:at["## Budgets"]]
    assert sum(line.startswith(("| 3 |", "| 5 |", "| 7 |", "| 9 |", "| 11 |", "| 12 |")) for line in looks.splitlines()) \
        == len(v["until_settled"]["looks"])
    assert "O'Brien-Fleming" in looks and "RCI [" in looks
    budgets = md[at["## Budgets"]:at["## Methods"]]
    assert "| skip_fused miou +2%..+3% | 6ep | 8 seeds |" in budgets and "**refuted (wrong direction)**" in budgets
    # the interaction test on the per-budget estimates with their full SEs, named in the report (issue 18 defect 2)
    assert "Welch test of the per-budget effects with their seeds x images standard errors): F(1, 14.0)" in budgets
    assert (run / "report" / "plots" / "budgets_miou.png").stat().st_size > 5000
    html = (run / "report" / "report.html").read_text()
    assert "<h2>Sequential looks</h2>" in html and "<h2>Budgets</h2>" in html
    assert html.count("data:image/png;base64,") >= 2  # forest and budgets embedded


def test_no_budgets_and_no_looks_means_null_sections_and_no_headings(tmp_path):
    from analysis import analyze

    run = make_run(tmp_path, budgets=False, looks=False)
    v = analyze(run, n_boot=200)
    assert v["budgets"] is None and v["until_settled"] is None
    md = (run / "report" / "report.md").read_text()
    assert "## Sequential looks" not in md and "## Budgets" not in md and "Across training budgets" not in md
    assert not (run / "report" / "budgets.json").exists()


def test_cli_prints_the_sections_from_verdicts_json_without_recomputing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import analysis.sections.budgets as B
    from analysis.cli import analyze_command

    run = make_run(tmp_path)
    calls = []
    real = B.budget_claims
    monkeypatch.setattr(B, "budget_claims", lambda *a, **k: calls.append(1) or real(*a, **k))
    done = CliRunner().invoke(analyze_command, [str(run), "--no-report", "--n-boot", "200"])
    assert done.exit_code == 0, done.output
    assert len(calls) == 1  # once, inside analyze
    assert "flips with the training budget" in done.output and "until settled: every hypothesis settled" in done.output


def test_a_corrupt_looks_json_is_a_warning_not_a_crash(tmp_path):
    from analysis import analyze

    run = make_run(tmp_path, looks=False)
    (run / "looks.json").write_text("{not json")
    v = analyze(run, n_boot=200, write=False)
    assert v["until_settled"] is None and any("looks.json" in w for w in v["warnings"])


def test_look_rows_show_the_claims_own_unit(tmp_path):
    from analysis.sequential.gate import look_rows

    run = make_run(tmp_path, budgets=False)
    record = json.loads((run / "looks.json").read_text())
    _, rows = look_rows(record)
    decision, text = rows[0][2]
    assert " %" in text and "RCI [" in text  # +2.5 % rather than a log ratio


def test_opening_names_each_budgets_baseline_not_only_the_first(tmp_path):
    from analysis import analyze

    run = make_run(tmp_path, looks=False)
    analyze(run, n_boot=200)
    opening = (run / "report" / "report.md").read_text().split("## Verdicts")[0]
    assert "each claim's own baseline (all_mlp@15ep, all_mlp@6ep)" in opening
    assert "relative to all_mlp@6ep," not in opening
