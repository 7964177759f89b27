"""The report rendered from its templates: what it opens with, where the forest plot sits, Methods numbers
taken from the run (fault 9), and odd data. Uses a fixed verdicts.json (tests/report_fixtures.py), so these
tests check the report, not the engine's numbers."""

from __future__ import annotations

import copy
import json
import re
import shutil

import pandas as pd
import pytest
from analysis_runs import make_run_dir
from report_fixtures import report_inputs, synthetic_verdicts

from analysis.report import write_report
from analysis.run_reader import load_run, seed_rows


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    verdicts, tables, seeds = report_inputs(tmp_path_factory.mktemp("report"), n_images=12, n_seeds=10)
    out = write_report(verdicts, tables, seeds)
    md = (tables.run_dir / "report" / "report.md").read_text()
    page = (tables.run_dir / "report" / "report.html").read_text()
    return verdicts, out, md, page


def _paragraphs(md: str) -> list[str]:
    return [p.strip() for p in md.split("\n\n") if p.strip()]


def test_report_opens_with_one_paragraph_answering_the_question(full_report):
    _, _, md, _ = full_report
    title, answer, heading = _paragraphs(md)[:3]
    assert title.startswith("# ablate report") and heading == "## Verdicts"
    assert "\n" not in answer
    assert "skip_fused: not settled — mIoU +7.3 % [-0.3, +15.5] (claimed +2..+3 %)" in answer
    assert "speed -18.0 % [-22.0, -14.0] (claimed -25..-15 %)" in answer
    assert "progressive: refuted — mIoU +0.1 % [-0.6, +0.8] (claimed +2..+3 %: smaller than claimed)" in answer
    assert "90 % intervals" in answer and "10 paired seeds" in answer and "3 paired launches" in answer


def test_verdict_tables_then_the_forest_plot(full_report):
    _, _, md, page = full_report
    verdicts_at = md.index("## Verdicts")
    hypothesis_row = md.index("| skip_fused: miou +2%..+3% and fps -25%..-15% | **not settled**")
    claim_row = md.index("| skip_fused miou +2%..+3% | +2..+3 % | +7.3 % [-0.3, +15.5]")
    forest = md.index("![forest](plots/forest.png)")
    next_section = md.index("\n## ", verdicts_at + 1)
    assert verdicts_at < hypothesis_row < claim_row < forest < next_section
    assert "0.08 / 0.03 / 0.89" in md  # the Bayesian reading beside the verdict
    assert "overlaps the band" in md and "60 seeds would settle it" in md
    assert page.index('alt="forest"') < page.index("<h2>Notes") if "<h2>Notes" in page else page.index("<h2>Methods")


def test_html_is_self_contained_and_escaped(full_report):
    _, out, _, page = full_report
    assert page.count("data:image/png;base64,") == len(out["plots"])
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page)
    assert "<script" not in page and "<link" not in page
    assert '<td class="verdict refuted">refuted (too small)</td>' in page
    assert "<strong>Verdicts.</strong>" in page and "**" not in page


def test_methods_numbers_come_from_the_run(full_report):
    _, _, md, _ = full_report
    methods = md[md.index("## Methods"):md.index("## Variants")]
    assert "same 12 test images (11 classes)" in methods
    assert "233" not in md
    assert "10 finished seed run(s)" in methods and "(10 paired seeds)" in methods
    assert "20 round(s) per variant over 3 launch(es)" in methods and "eager mode" in methods
    assert "use 2000 resamples, random seed 0" in methods and "α = 0.05" in methods and "90 % interval" in methods
    assert "latency.csv holds 1 other setting(s), reported, never used" in methods
    assert "| device cpu, batch 4, height 64, width 64, dtype fp32, mode eager | all_mlp | 20 | 3 | yes |" in md
    assert "6 epoch(s) at 256x256" in methods and "Holm-corrected across the 2 hypotheses" in methods


def test_methods_follow_other_numbers(tmp_path):
    verdicts, tables, seeds = report_inputs(tmp_path, n_images=5, n_seeds=3, n_epochs=2)
    verdicts = copy.deepcopy(verdicts)
    verdicts["alpha"], verdicts["n_boot"] = 0.1, 777
    for v in verdicts["variants"].values():
        v["n_seeds"] = 3
    for t in verdicts["test_set"]["variants"].values():
        t["n_images"] = 5
    methods = _markdown(tables, verdicts).split("## Methods")[1].split("## Variants")[0]
    assert "same 5 test images" in methods and "use 777 resamples" in methods and "α = 0.1" in methods
    assert "80 % interval" in methods and "2 epoch(s)" in methods and "3 finished seed run(s)" in methods


def test_speed_methods_say_where_the_interval_comes_from(tmp_path):
    verdicts, tables, _ = report_inputs(tmp_path, n_images=4, n_seeds=3)
    assert "over 3 launch(es), the interval coming from the launches" in _markdown(tables, verdicts)
    for claim in verdicts["claims"]:
        if claim["metric"] == "fps":
            claim.update(n=20, n_unit="rounds")
    for v in verdicts["latency"]["variants"].values():
        v["n_launches"] = 1
    md = _markdown(tables, verdicts)
    assert "over 1 launch(es), the interval coming from the rounds (between-launch variation not included)" in md


def test_random_init_is_said_so(tmp_path):
    verdicts, tables, _ = report_inputs(tmp_path, n_images=4, n_seeds=3)
    tables.results["pretrained"] = "none"
    md = _markdown(tables, verdicts)
    assert "encoder weights none (random init)" in md


def test_templates_state_no_numbers_of_their_own():
    from analysis.report import TEMPLATES

    for path in TEMPLATES.glob("*.j2"):
        text = re.sub(r"\{[{%#].*?[}%#]\}", "", path.read_text(), flags=re.S)  # outside Jinja tags
        text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
        numbers = set(re.findall(r"(?<![\w#.-])\d+(?:\.\d+)?(?![\w%])", text))
        assert numbers <= {"1", "2", "0.01"}, f"{path.name}: {numbers}"  # "1 − 2α", "1 point = 0.01"


def test_default_methods_text_is_gone():
    import analysis.report as report

    assert not hasattr(report, "DEFAULT_METHODS")


# --- thin or odd data ------------------------------------------------------------------------------


def _markdown(tables, verdicts) -> str:
    """The Markdown alone (no figures drawn): fast, for tests about text."""
    from analysis.report import render

    return render(verdicts, {}, tables.run_dir / "report", [], tables.study, tables.results)[0]


def _render(run, verdicts):
    tables = load_run(run)
    out = write_report(verdicts, tables, seed_rows(tables.results, []))
    return out, (run / "report" / "report.md").read_text(), (run / "report" / "report.html").read_text()


def test_results_csv_only_directory(tmp_path):
    full = make_run_dir(tmp_path / "full", n_seeds=4, n_images=6)
    run = tmp_path / "bare"
    run.mkdir()
    shutil.copy(full / "results.csv", run / "results.csv")
    verdicts = synthetic_verdicts(run)
    verdicts["latency"] = {"available": False, "reason": "no latency.csv"}
    verdicts["test_set"] = {"available": False, "reason": "no confusion/ matrices"}
    out, md, page = _render(run, verdicts)
    assert "learning_curves" not in out["plots"] and "forest" in out["plots"]
    assert "Not quantified (no confusion/ matrices)" in md
    assert "No latency measurement (no latency.csv)" in md
    assert "learning_curves: no epochs.csv rows" in md
    assert "<html" in page


def test_one_seed_failed_runs_and_no_latency(tmp_path):
    run = make_run_dir(tmp_path / "run", n_seeds=1, n_images=4, latency=False)
    frame = pd.read_csv(run / "results.csv")
    frame.loc[frame["variant"] == "unet_r34", ["status", "miou"]] = ["failed", float("nan")]
    frame.to_csv(run / "results.csv", index=False)
    verdicts = synthetic_verdicts(run)
    for claim in verdicts["claims"]:
        claim.update(estimate=None, ci=[None, None], ci_refute=[None, None], n=1, reading="no data",
                     posterior={}, seeds_needed=None, reason="only 1 paired seed: no interval")
    for h in verdicts["hypotheses"]:
        h.update(verdict="inconclusive", reason="only 1 paired seed")
    verdicts["variants"]["unet_r34"].update(n_seeds=0, n_failed=1, miou_mean=None, miou_sd=None)
    for v in verdicts["variants"].values():
        v.update(fps_median=None, fps_q25=None, fps_q75=None)
    verdicts["power_curves"], verdicts["comparisons"] = [], []
    verdicts["latency"] = {"available": False, "reason": "no latency.csv"}
    out, md, _ = _render(run, verdicts)
    assert "only 1 paired seed: no interval" in md and "no estimate" in md
    assert "power: no claim with a power curve" in md
    assert "| unet_r34 | unet_r34 | 0 (1 failed) |" in md
    assert "tradeoff: needs latency rounds" in md
    json.dumps(out)


def test_no_claims_at_all(tmp_path):
    run = make_run_dir(tmp_path / "run", n_seeds=3, n_images=4)
    verdicts = synthetic_verdicts(run)
    verdicts["claims"], verdicts["hypotheses"], verdicts["power_curves"] = [], [], []
    out, md, _ = _render(run, verdicts)
    assert "No claims were stated" in md and "No claims were given" in md
    assert "forest" in out["plots"]  # the unclaimed comparison still has its panel


def test_schema_v1_verdicts_still_render(tmp_path):
    """An older verdicts.json (no hypotheses, no posterior): each part says its own verdict."""
    run = make_run_dir(tmp_path / "run", n_seeds=3, n_images=4)
    verdicts = synthetic_verdicts(run)
    del verdicts["hypotheses"]
    for claim in verdicts["claims"]:
        del claim["posterior"], claim["reading"]
    _, md, _ = _render(run, verdicts)
    assert "skip_fused: mIoU +7.3 % [-0.3, +15.5] (claimed +2..+3 %: inconclusive)" in md


def test_a_failing_plot_becomes_a_warning(tmp_path, monkeypatch):
    import analysis.plots.tradeoff

    def broken(*args, **kwargs):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(analysis.plots.tradeoff, "plot_tradeoff", broken)
    run = make_run_dir(tmp_path / "run", n_seeds=3, n_images=4)
    verdicts = synthetic_verdicts(run)
    out, md, _ = _render(run, verdicts)
    assert any("plot tradeoff skipped" in w and "renderer exploded" in w for w in verdicts["warnings"])
    assert "forest" in out["plots"] and "renderer exploded" in md


def test_a_bare_verdicts_dict_renders(tmp_path):
    """Only the keys every verdicts.json has: each missing section says it is not available."""
    from analysis.report import render

    md, page = render({"run_dir": str(tmp_path), "alpha": 0.05}, {}, tmp_path, [])
    assert "No claims were stated" in md and "Not available: no latency.csv." in md
    assert "Not available: no per-image confusion matrices." in md and "</html>" in page


def test_the_answer_says_what_would_settle_an_open_claim(tmp_path):
    verdicts, tables, _ = report_inputs(tmp_path, n_images=4, n_seeds=3)
    verdicts["claims"][1]["seeds_to_settle"] = 19
    answer = _paragraphs(_markdown(tables, verdicts))[1]
    assert "speed -18.0 % [-22.0, -14.0] (claimed -25..-15 %: about 19 launches would settle it)" in answer
