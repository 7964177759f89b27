"""report/report.md and a self-contained report/report.html (plots embedded as base64 PNG).

The report is built once as a list of blocks (heading, paragraph, table, image,
...) and rendered twice, so the Markdown and the HTML always say the same thing.
Order: verdicts first, then warnings, methods, tables, plots, environment, schema.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from analysis import plots as P
from analysis.summary import class_tables, forest_rows, interval
from analysis.tables import RunTables, load_tune_studies

DEFAULT_METHODS = (
    "Runs are paired by seed (same data order, augmentation and initialisation), so each claim is tested "
    "on the per-seed differences variant − baseline; seeds present for only one side are dropped and listed. "
    "The effect is reported as a mean difference and as a relative change (variant / baseline − 1; on the log "
    "ratio for relative bands), each with a t-interval and a BCa bootstrap interval over seeds. Superiority: "
    "one-sided paired t-test, cross-checked by a Wilcoxon signed-rank test and an exact sign-flip permutation "
    "test (valid at small n). Claimed bands: an interval (TOST-style) test — the claim is *supported* when the "
    "CI lies inside the band, *refuted* when it lies outside (too small, too large or the wrong direction), "
    "*inconclusive* when it straddles an edge, with the number of seeds that would settle it (80 % power at "
    "the band's lower edge, paired t-test). p-values are Holm-corrected across all claims and, separately, "
    "across all variant-vs-baseline comparisons. Speed claims use the interleaved latency rounds: the ratio of "
    "throughputs, with a bootstrap CI over rounds. Test-set uncertainty: a bootstrap over test images that "
    "re-sums the per-image confusion matrices and recomputes mIoU (a ratio of sums, never a mean of per-image IoU)."
)


# --- numbers as text ---------------------------------------------------------------------------


def _num(x, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def _pct(x, fmt: str = "+.1f") -> str:
    return "—" if x is None else f"{100 * x:{fmt}} %"


def _ci(ci, scale: float = 100.0, fmt: str = "+.1f") -> str:
    ci = interval(ci)
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f" [{scale * ci[0]:{fmt}}, {scale * ci[1]:{fmt}}]"


def _p(x) -> str:
    if x is None:
        return "—"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def claim_effects(claim: dict, comparisons: dict[str, dict]) -> tuple[str, str]:
    """(relative % with CI, absolute with CI) for one claim, each '—' when unknown."""
    metric = claim["metric"]
    unit_abs, scale_abs = ("pts", 100.0) if metric in ("miou", "pixel_acc", "mean_acc", "fwiou") else (
        "img/s" if metric == "fps" else "", 1.0)
    if claim.get("relative"):
        rel, rel_ci = claim.get("estimate"), claim.get("ci")
    else:
        comp = comparisons.get(claim["variant"], {}) if metric == "miou" else {}
        rel, rel_ci = comp.get("rel_diff"), comp.get("rel_ci")
    absolute, abs_ci = claim.get("estimate_abs"), claim.get("ci_abs")
    if absolute is None and not claim.get("relative"):
        absolute, abs_ci = claim.get("estimate"), claim.get("ci")
    rel_text = "—" if rel is None else f"{_pct(rel)}{_ci(rel_ci)}"
    abs_text = "—" if absolute is None else f"{scale_abs * absolute:+.2f}{_ci(abs_ci, scale_abs, '+.2f')} {unit_abs}"
    return rel_text, abs_text.strip()


def _band_text(claim: dict) -> str:
    lo, hi = claim["band"]
    if claim.get("relative"):
        return f"{100 * lo:+g} % .. {100 * hi:+g} %"
    return f"{lo:+g} .. {hi:+g}"


def _verdict_text(claim: dict) -> str:
    verdict = claim.get("verdict") or "inconclusive"
    return f"{verdict} ({claim['direction']})" if claim.get("direction") else verdict


# --- blocks ------------------------------------------------------------------------------------


def verdict_blocks(verdicts: dict) -> list:
    comparisons = {c["variant"]: c for c in verdicts["comparisons"]}
    blocks: list = [("h2", "Verdicts")]
    if not verdicts["claims"]:
        blocks.append(("p", "No claims were given (none in study.json and no `--claim`): see the comparisons below."))
        return blocks
    rows = []
    for claim in verdicts["claims"]:
        rel, absolute = claim_effects(claim, comparisons)
        power = claim.get("power")
        rows.append([claim["claim"], _band_text(claim), rel, absolute, ("verdict", _verdict_text(claim)),
                     str(claim.get("n") or 0), _p(claim.get("p_superiority_holm")),
                     "—" if power is None else f"{power:.0%}", _num(claim.get("seeds_needed"), "d")
                     if isinstance(claim.get("seeds_needed"), int) else "—", claim.get("reason") or ""])
    blocks.append(("table", ["claim", "band", "effect (relative, CI)", "effect (absolute, CI)", "verdict", "n",
                             "p sup. (Holm)", "power", "seeds for 80 %", "why"], rows))
    level = 100 * (1 - 2 * verdicts["alpha"])
    blocks.append(("p", f"Claim CIs are {level:g} % intervals (1 − 2·alpha: the interval that matches the TOST "
                        f"interval test at alpha); relative = variant / baseline − 1; absolute mIoU in points "
                        f"(1 point = 0.01 mIoU), throughput in images/s. n = paired seeds (latency rounds for fps)."))
    return blocks


def warning_blocks(warnings: list[str]) -> list:
    if not warnings:
        return []
    return [("h2", "Notes and warnings"), ("ul", warnings)]


def methods_blocks(verdicts: dict) -> list:
    paragraphs = _stats_methods_text() or [DEFAULT_METHODS]
    n_seeds = sorted({v["n_seeds"] for v in verdicts["variants"].values()})
    images = sorted({v.get("n_images") for v in (verdicts["test_set"].get("variants") or {}).values()
                     if v.get("n_images")})
    facts = [f"alpha = {verdicts['alpha']} (two-sided CIs at {100 * (1 - verdicts['alpha']):.0f} %)",
             f"baseline = {verdicts['baseline'] or 'not named'}",
             f"seeds per variant = {', '.join(map(str, n_seeds)) or '0'}",
             f"bootstrap resamples = {verdicts['n_boot']}, random seed = {verdicts['seed']}",
             f"test images = {', '.join(map(str, images)) or 'no per-image confusion matrices'}",
             "multiplicity: Holm across all claims; Holm across all variant-vs-baseline comparisons"]
    return [("h2", "Methods"), *[("p", p) for p in paragraphs], ("ul", facts)]


def _stats_methods_text() -> list[str] | None:
    """The stats helper's METHODS text as paragraphs (it owns the wording of its methods)."""
    for module in ("analysis.stats", "analysis.claims"):
        try:
            text = getattr(__import__(module, fromlist=["METHODS"]), "METHODS", None)
        except Exception:  # noqa: BLE001
            text = None
        if isinstance(text, str) and text.strip():
            return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return None


def variant_blocks(verdicts: dict) -> list:
    rows = []
    for name, v in verdicts["variants"].items():
        tag = " (baseline)" if name == verdicts["baseline"] else ""
        sd = f" ± {100 * v['miou_sd']:.2f}" if v.get("miou_sd") is not None else ""
        fps = "—" if v.get("fps_median") is None else f"{v['fps_median']:.1f} [{v['fps_q25']:.1f}, {v['fps_q75']:.1f}]"
        rows.append([name + tag, str(v.get("decoder") or "—"), f"{v['n_seeds']} ({v['n_failed']} failed)",
                     "—" if v.get("miou_mean") is None else f"{100 * v['miou_mean']:.2f}{sd}",
                     _num(None if v.get("pixel_acc_mean") is None else 100 * v["pixel_acc_mean"], ".2f"),
                     _num(v.get("params_m"), ".2f"), _num(v.get("gflops"), ".2f"), fps])
    blocks = [("h2", "Variants"),
              ("table", ["variant", "decoder", "seeds (failed)", "test mIoU % (mean ± sd)", "pixel acc %",
                         "params (M)", "GFLOPs", "fps median [IQR]"], rows)]
    comp_rows = []
    for c in verdicts["comparisons"]:
        if c.get("mean_diff") is None:
            comp_rows.append([c["variant"], str(c.get("n", 0)), "—", "—", "—", "—", "—", "—", c.get("reason", "")])
            continue
        comp_rows.append([c["variant"], str(c["n"]), f"{100 * c['mean_diff']:+.2f}{_ci(c.get('ci_t'), fmt='+.2f')}",
                          f"{_pct(c.get('rel_diff'))}{_ci(c.get('rel_ci'))}", _p(c.get("p_ttest")), _p(c.get("p_holm")),
                          _p(c.get("p_permutation")), _num(c.get("d_z"), "+.2f"),
                          "—" if c.get("prob_improvement") is None else f"{c['prob_improvement']:.0%}"])
    if comp_rows:
        blocks += [("h3", f"Each variant vs {verdicts['baseline']} (test mIoU, paired by seed)"),
                   ("table", ["variant", "n", "Δ points [t CI]", "relative [CI]", "p (t)", "p (t, Holm)",
                              "p (perm.)", "d_z", "P(improve)"], comp_rows)]
    blocks += test_set_blocks(verdicts["test_set"])
    blocks += latency_blocks(verdicts["latency"])
    return blocks


def test_set_blocks(test_set: dict) -> list:
    blocks: list = [("h3", "Seed-to-seed vs test-set variance")]
    if not test_set.get("available"):
        return blocks + [("p", f"Not available: {test_set.get('reason', 'unknown')}.")]
    rows = []
    paired = test_set.get("paired_vs_baseline") or {}
    for name, t in test_set["variants"].items():
        share = t.get("seed_share_of_variance")
        delta = paired.get(name)
        delta_text = "—"
        if delta and delta.get("delta") is not None:
            delta_text = f"{100 * delta['delta']:+.2f}{_ci(delta.get('ci'), fmt='+.2f')} (seed {delta['seed']})"
        rows.append([name, str(t.get("n_images") or "—"), str(t["n_runs"]),
                     _num(None if t.get("sd_over_seeds") is None else 100 * t["sd_over_seeds"], ".2f"),
                     _num(None if t.get("mean_bootstrap_se") is None else 100 * t["mean_bootstrap_se"], ".2f"),
                     "—" if share is None else f"{share:.0%}", delta_text])
    return blocks + [
        ("p", "sd over seeds measures training randomness (every seed is scored on the same test images); the "
              "image-bootstrap se measures how much mIoU would move on another test set of the same size. "
              "The seed share is sd² / (sd² + se²)."),
        ("table", ["variant", "test images", "runs", "sd over seeds (pts)", "mean image-bootstrap se (pts)",
                   "seed share of variance", "Δ vs baseline on the same images (pts, CI)"], rows)]


def latency_blocks(latency: dict) -> list:
    blocks: list = [("h3", "Latency")]
    if not latency.get("available"):
        return blocks + [("p", f"Not available: {latency.get('reason')}.")]
    setting = ", ".join(f"{k} {v}" for k, v in latency.get("setting", {}).items())
    rows = []
    for name, v in latency["variants"].items():
        ratio = (latency.get("ratio_vs_baseline") or {}).get(name) or {}
        value = ratio.get("ratio", ratio.get("estimate"))
        ratio_text = "—" if value is None else f"{value:.3f}{_ci(ratio.get('ci'), 1.0, '.3f')}"
        rows.append([name, str(v["n_rounds"]), f"{v['ms_median']:.2f} [{v['ms_q25']:.2f}, {v['ms_q75']:.2f}]",
                     f"{v['fps_median']:.1f}", ratio_text])
    return blocks + [("p", f"Interleaved rounds; {setting}."),
                     ("table", ["variant", "rounds", "ms/image median [IQR]", "fps median",
                                "fps ratio vs baseline [CI]"], rows)]


def environment_blocks(environment: dict) -> list:
    rows = [[k, _env_value(v)] for k, v in environment.items() if k != "analysis"]
    rows += [[f"analysis: {k}", str(v)] for k, v in (environment.get("analysis") or {}).items()]
    return [("h2", "Environment"), ("table", ["setting", "value"], rows)]


def _env_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value in (None, "", "none", "None"):
        return "— (random init)" if value in ("none", "None") else "—"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def schema_blocks() -> list:
    import analysis

    doc = analysis.__doc__ or ""
    schema = doc[doc.find("verdicts.json"):] if "verdicts.json" in doc else doc
    return [("h2", "verdicts.json schema"), ("pre", schema.strip())]


# --- plots -------------------------------------------------------------------------------------

PLOT_CAPTIONS = {
    "miou_by_seed": "Test mIoU of every seed run per variant; thin lines join runs that share a seed.",
    "forest": "Relative change vs the baseline with its CI; the shaded box is the claimed band.",
    "tradeoff": "Accuracy vs throughput, error bars in both axes.",
    "class_iou": "Per-class test IoU, mean over seeds.",
    "class_delta": "Per-class IoU change vs the baseline, in points.",
    "learning_curves": "Validation mIoU by epoch, mean ± 1 sd over seeds.",
    "power": "Power of the one-sided paired t-test at the band's lower edge vs number of seeds.",
}


def make_plots(verdicts: dict, tables: RunTables, seeds: pd.DataFrame, out_dir: Path, *, seed: int,
               warnings: list[str], notes: list[str]) -> dict[str, dict]:
    """Every figure that the data supports, each guarded; returns ``name -> {png, svg}``."""
    baseline = verdicts["baseline"]
    order = [v for v in verdicts["variants"] if verdicts["variants"][v]["n_seeds"] > 0]
    made: dict[str, dict] = {}

    def add(name, make, skip_reason=None):
        if skip_reason:
            notes.append(f"{name}: {skip_reason}")
            return
        paths = P.guarded(make, out_dir, name, warnings)
        if paths:
            made[name] = paths

    add("miou_by_seed", lambda: P.miou_by_seed(seeds, order, baseline),
        None if order else "no finished seed runs")
    rows = forest_rows(verdicts)
    add("forest", lambda: P.forest(rows, alpha=verdicts["alpha"]),
        None if any(r.get("estimate") is not None for r in rows) else "no effect could be estimated")
    points = _tradeoff_points(verdicts)
    add("tradeoff", lambda: P.tradeoff(points, baseline),
        None if len(points) else "needs latency rounds and seed runs of the same variants")
    class_iou, class_delta = class_tables(verdicts["variants"], baseline)
    add("class_iou", lambda: P.class_iou_heatmap(class_iou),
        None if class_iou.notna().any().any() else "no iou_<class> columns with values")
    has_delta = class_delta is not None and class_delta.notna().any().any()
    add("class_delta", lambda: P.class_delta_heatmap(class_delta, baseline),
        None if has_delta else "needs iou_<class> columns and seed runs of the baseline")
    epochs = _seed_epochs(tables)
    has_epochs = epochs is not None and epochs["variant"].isin(order).any()
    add("learning_curves", lambda: P.learning_curves(epochs, order),
        None if has_epochs else "no epochs.csv rows for finished seed runs")
    _optuna_plots(tables, order, seed, add)
    curves = verdicts.get("power_curves") or []
    add("power", lambda: P.power_curves(curves), None if curves else "no seed-level claim with a usable spread")
    return made


def _tradeoff_points(verdicts: dict) -> pd.DataFrame:
    keys = ["miou_mean", "miou_sd", "fps_median", "fps_q25", "fps_q75"]
    rows = [{"variant": n, **{k: v.get(k) for k in keys}} for n, v in verdicts["variants"].items()
            if v.get("miou_mean") is not None and v.get("fps_median") is not None]
    return pd.DataFrame(rows, columns=["variant", *keys]).astype({k: float for k in keys})


def _seed_epochs(tables: RunTables) -> pd.DataFrame | None:
    """epochs.csv rows of seed-phase runs, with their variant (joined from results.csv by run_id)."""
    epochs = tables.epochs
    if epochs is None or epochs.empty:
        return None
    results = tables.results
    if "run_id" in epochs.columns:
        info = results[["run_id", "variant", "phase"]].drop_duplicates("run_id", keep="last")
        info = info.astype({"run_id": str})
        epochs = epochs.astype({"run_id": str}).drop(columns=[c for c in ("variant", "phase") if c in epochs.columns])
        epochs = epochs.merge(info, on="run_id", how="inner")
    if "variant" not in epochs.columns:
        return None
    if "phase" in epochs.columns and (epochs["phase"] == "seed").any():
        epochs = epochs[epochs["phase"] == "seed"]
    return epochs.dropna(subset=["epoch", "val_miou"])


def _optuna_plots(tables: RunTables, order: list[str], seed: int, add) -> None:
    if tables.storage_path is None:
        return
    studies = load_tune_studies(tables.storage_path, order)
    for variant, study in studies.items():
        import optuna

        complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        reason = None if len(complete) >= 2 else f"{len(complete)} complete trial(s): need 2"
        add(f"optuna_history_{variant}", lambda s=study, v=variant: P.optuna_history(s, v), reason)
        add(f"param_importance_{variant}", lambda s=study, v=variant: P.param_importance(s, v, seed=seed), reason)


def plot_blocks(made: dict[str, dict], out_dir: Path, notes: list[str]) -> list:
    blocks: list = [("h2", "Plots")]
    for name, paths in made.items():
        caption = PLOT_CAPTIONS.get(name) or _optuna_caption(name)
        blocks.append(("img", paths["png"], name.replace("_", " "), caption))
    if notes:
        blocks += [("p", "Plots not drawn (not enough data):"), ("ul", notes)]
    return blocks


def _optuna_caption(name: str) -> str:
    if name.startswith("optuna_history_"):
        return f"Optuna tune phase of {name.removeprefix('optuna_history_')}: objective per trial and best so far."
    if name.startswith("param_importance_"):
        return f"Importance of the settings tuned for {name.removeprefix('param_importance_')} (fANOVA, seeded; PED-ANOVA without scikit-learn)."
    return ""


# --- rendering ---------------------------------------------------------------------------------


def _md_cell(cell) -> str:
    text = f"**{cell[1]}**" if isinstance(cell, tuple) else str(cell)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list, report_dir: Path) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "pre":
            lines += ["```", block[1], "```", ""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines.append("| " + " | ".join(headers) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "img":
            path, title, caption = block[1], block[2], block[3]
            lines += [f"![{title}]({Path(path).relative_to(report_dir).as_posix()})", "", f"*{caption}*", ""]
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    text = html.escape(str(text))
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def _html_cell(cell) -> str:
    if isinstance(cell, tuple):
        verdict = cell[1].split()[0]
        return f'<td class="verdict {html.escape(verdict)}">{html.escape(cell[1])}</td>'
    return f"<td>{_inline_html(cell)}</td>"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .55em;text-align:left;vertical-align:top}
th{background:#f2f2f2}
td.verdict{font-weight:bold}
td.supported{background:#d8f0e6;color:#00573f}
td.refuted{background:#fbe0d2;color:#8a3300}
td.inconclusive{background:#ececec;color:#444}
figure{margin:1.2em 0}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.82em}
code{background:#f2f2f2;padding:0 .2em}
"""


def render_html(blocks: list, title: str) -> str:
    """One file, no external resources: CSS inline, images as data: URIs."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{_inline_html(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline_html(block[1])}</p>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(block[1])}</pre>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in block[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(Path(block[1]).read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{_inline_html(block[3])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --- entry point -------------------------------------------------------------------------------


def build_blocks(verdicts: dict, made: dict, report_dir: Path, notes: list[str]) -> list:
    title = f"ablate report: {verdicts.get('study') or Path(verdicts['run_dir']).name}"
    intro = (f"Run directory `{verdicts['run_dir']}`; baseline **{verdicts['baseline'] or 'not named'}**; "
             f"alpha {verdicts['alpha']}; machine-readable results in `verdicts.json`.")
    return [("h1", title), ("p", intro), *verdict_blocks(verdicts), *warning_blocks(verdicts["warnings"]),
            *methods_blocks(verdicts), *variant_blocks(verdicts), *plot_blocks(made, report_dir, notes),
            *environment_blocks(verdicts["environment"]), *schema_blocks()]


def write_report(verdicts: dict, tables: RunTables, seeds: pd.DataFrame, *, seed: int = 0) -> dict:
    """Plots, report.md and report.html under ``run_dir/report``; plot failures become warnings."""
    report_dir = Path(tables.run_dir) / "report"
    plots_dir = report_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    made = make_plots(verdicts, tables, seeds, plots_dir, seed=seed, warnings=verdicts["warnings"], notes=notes)
    blocks = build_blocks(verdicts, made, report_dir, notes)
    markdown, page = report_dir / "report.md", report_dir / "report.html"
    markdown.write_text(render_markdown(blocks, report_dir))
    page.write_text(render_html(blocks, blocks[0][1]))
    return {"dir": str(report_dir), "markdown": str(markdown), "html": str(page),
            "plots": {name: str(paths["png"]) for name, paths in made.items()}}
