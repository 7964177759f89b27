"""Which figures the run's data support, drawn and saved; each failure becomes a warning."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ablate.rundir.metrics import metric as metric_entry
from analysis import plots as P
from analysis.report.text import claims_in_order, finite, interval, posterior_text

CAPTIONS = {
    "forest": "Each claim's effect in its own unit: the thick bar is the interval the verdict uses, the shaded "
              "box the claimed band (magnified when the interval is much wider, as the panel says).",
    "miou_by_seed": "Test mIoU of every seed run per variant; thin lines join runs that share a seed.",
    "tradeoff": "Accuracy vs throughput, error bars in both axes.",
    "variance": "Where the uncertainty of each paired mIoU effect comes from: training seeds, the finite test set, "
                "and their interaction (shares of the variance; sd of each part).",
    "class_iou": "Per-class test IoU, mean over seeds.",
    "class_delta": "Per-class IoU change vs the baseline, in points.",
    "learning_curves": "Validation mIoU by epoch, mean ± 1 sd over seeds.",
    "budgets": "The claim's effect at each training budget with the verdict's interval; the shaded band is the claim, "
               "the label the verdict at that budget; the title gives the budget × variant interaction p.",
    "power": "Chance the verdict rule settles each claim vs the number of paired seeds, at the band's midpoint; ▼ marks "
             "the seeds needed for 80 % (each curve runs past it, or to n = {max_n} when 80 % is out of reach).",
}


def caption(name: str) -> str:
    if name.startswith("optuna_history_"):
        return f"Optuna tune phase of {name.removeprefix('optuna_history_')}: objective per trial and best so far."
    if name.startswith("param_importance_"):
        return (f"Importance of the settings tuned for {name.removeprefix('param_importance_')} "
                f"(Optuna's plot; fANOVA seeded, PED-ANOVA without scikit-learn).")
    if name.startswith("budgets_"):
        return CAPTIONS["budgets"]
    if name == "power":
        from analysis.estimators.verdict_power import MAX_N

        return CAPTIONS["power"].format(max_n=MAX_N)
    return CAPTIONS.get(name, "")


def make_plots(verdicts: dict, tables, seeds: pd.DataFrame, out_dir: Path, *, seed: int, warnings: list[str],
               notes: list[str]) -> dict[str, dict]:
    """Every figure the data support; returns ``name -> {png, svg}`` (forest first)."""
    baseline = verdicts["baseline"]
    order = [v for v in verdicts["variants"] if verdicts["variants"][v].get("n_seeds", 0) > 0]
    colours = P.variant_colours(verdicts["variants"])  # one colour per variant in every figure
    made: dict[str, dict] = {}

    def add(name, draw, skip_reason=None):
        if skip_reason:
            notes.append(f"{name}: {skip_reason}")
            return
        paths = _guarded(draw, out_dir, name, warnings)
        if paths:
            made[name] = paths

    rows = forest_rows(verdicts)
    level = 1 - 2 * verdicts["alpha"]
    add("forest", lambda: P.plot_forest(rows, level=level, wide_level=1 - verdicts["alpha"]),
        None if any(finite(r.get("estimate")) for r in rows) else "no effect could be estimated")
    _budget_plots(verdicts, add)
    add("miou_by_seed", lambda: P.plot_miou_by_seed(seeds, order, baseline=baseline, colours=colours),
        None if order else "no finished seed runs")
    points = tradeoff_points(verdicts)
    add("tradeoff", lambda: P.plot_tradeoff(points, baseline=baseline, colours=colours),
        None if len(points) else "needs latency rounds and seed runs of the same variants")
    components, unit, title = variance_rows(verdicts)
    add("variance", lambda: P.plot_variance_components(components, unit=unit, title=title),
        None if components else "needs per-image confusion matrices of the seed runs")
    class_iou, class_delta = class_tables(verdicts["variants"], baseline)
    add("class_iou", lambda: P.plot_class_iou(class_iou),
        None if class_iou.notna().any().any() else "no iou_<class> columns with values")
    has_delta = class_delta is not None and class_delta.notna().any().any()
    add("class_delta", lambda: P.plot_class_delta(class_delta, baseline=baseline),
        None if has_delta else "needs iou_<class> columns and seed runs of the baseline")
    epochs = seed_epochs(tables)
    has_epochs = epochs is not None and epochs["variant"].isin(order).any()
    add("learning_curves", lambda: P.plot_learning_curves(epochs, order, colours=colours),
        None if has_epochs else "no epochs.csv rows for finished seed runs")
    _optuna_plots(tables, order, seed, add)
    curves = power_rows(verdicts)
    add("power", lambda: P.plot_power(curves), None if curves else "no claim with a power curve")
    return made


def _budget_plots(verdicts: dict, add) -> None:
    """Effect vs budget, one figure per metric (analysis.sections.budgets draws it from verdicts.json's section)."""
    claims = (verdicts.get("budgets") or {}).get("claims") or []
    if not claims:
        return
    from analysis.sections.budgets import BudgetClaim, plot_budget_figure

    results = [BudgetClaim.from_dict(c) for c in claims]
    for metric in sorted({r.metric for r in results}):
        add(f"budgets_{metric}", lambda m=metric: plot_budget_figure(results, m))


def _guarded(draw, out_dir: Path, name: str, warnings: list[str]) -> dict | None:
    import matplotlib.pyplot as plt

    try:
        with P.style():
            return P.save(draw(), out_dir, name)
    except Exception as exc:  # noqa: BLE001 - one broken figure must not cost the whole report
        plt.close("all")
        warnings.append(f"plot {name} skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None


def forest_rows(verdicts: dict) -> list[dict]:
    """One row per claim in its own unit, then the mIoU change of each variant no claim covers."""
    rows, claimed = [], set()
    for claim in claims_in_order(verdicts):
        relative, metric = claim.get("relative"), claim.get("metric")
        m = metric_entry(metric)
        unit, scale = ("change vs baseline (%)", 100.0) if relative else (
            f"change vs baseline ({m.label}, {'points' if m.is_fraction else m.unit})", m.scale)
        post = posterior_text(claim)
        note = f"P(below / inside / above band) = {post}" if post != "—" else ""
        rows.append({"label": f"{claim['claim']}   (n = {claim.get('n') or 0} {claim.get('n_unit') or ''})".replace(" )", ")"), "unit": unit, "scale": scale,
                     "estimate": claim.get("estimate"), "ci": interval(claim.get("ci")),
                     "ci_wide": interval(claim.get("ci_refute")), "band": claim.get("band"),
                     "verdict": claim.get("verdict"), "direction": claim.get("direction"),
                     "note": note or (None if finite(claim.get("estimate")) else claim.get("reason"))})
        claimed.add((claim["variant"], metric))
    for comp in verdicts.get("comparisons") or []:
        if (comp["variant"], "miou") in claimed or not finite(comp.get("rel_diff")):
            continue
        rows.append({"label": f"{comp['variant']} miou, no claim   (n = {comp.get('n') or 0} seeds)",
                     "unit": "change vs baseline (%)", "scale": 100.0,
                     "estimate": comp.get("rel_diff"), "ci_wide": interval(comp.get("rel_ci"))})
    return rows


def tradeoff_points(verdicts: dict) -> pd.DataFrame:
    keys = ["miou_mean", "miou_sd", "fps_median", "fps_q25", "fps_q75"]
    rows = [{"variant": n, **{k: v.get(k) for k in keys}} for n, v in verdicts["variants"].items()
            if finite(v.get("miou_mean")) and finite(v.get("fps_median"))]
    return pd.DataFrame(rows, columns=["variant", *keys]).astype({k: float for k in keys})


def variance_rows(verdicts: dict) -> tuple[list[dict], str, str]:
    """(rows, unit, title) for the variance figure: the paired mIoU effect's variance components.

    verdicts.json's seed × image decomposition of each variant's paired effect (points of mIoU);
    an older verdicts.json has only each variant's raw mIoU spread (sd over seeds vs image se).
    """
    test_set = verdicts.get("test_set") or {}
    rows = []
    for name, d in (test_set.get("paired_vs_baseline") or {}).items():
        parts = {"seed": d.get("var_seed"), "image": d.get("var_image"), "seed × image": d.get("var_interaction")}
        if all(finite(v) for v in parts.values()) and sum(parts.values()) > 0:
            rows.append({"label": f"{name} − {verdicts.get('baseline')} (n={len(d.get('seeds') or []) or '?'})",
                         "sd": {k: 100 * max(v, 0.0) ** 0.5 for k, v in parts.items()}})
    if rows:
        return rows, "mIoU points", "Paired mIoU effect: variance components (seeds, test images, interaction)"
    for name, t in (test_set.get("variants") or {}).items():
        seed_sd, image_sd = t.get("sd_over_seeds"), t.get("mean_image_se", t.get("mean_bootstrap_se"))
        if finite(seed_sd) and finite(image_sd) and (seed_sd > 0 or image_sd > 0):
            rows.append({"label": f"{name} (n={t.get('n_runs')})", "sd": {"seed": 100 * seed_sd,
                                                                          "image": 100 * image_sd}})
    return rows, "mIoU points", "Each variant's test mIoU: seeds vs test images"


def class_tables(summaries: dict, baseline: str | None):
    """Variant × class IoU means, and the change vs the baseline (None without one)."""
    iou = pd.DataFrame({v: s["class_iou"] for v, s in summaries.items() if s.get("class_iou")}).T.astype(float)
    if iou.empty or baseline not in iou.index:
        return iou, None
    return iou, (iou.drop(index=baseline) - iou.loc[baseline]).astype(float)


def power_rows(verdicts: dict) -> list[dict]:
    """verdicts.json's power curves, each with its claim's seeds needed when the claim has one."""
    claims = {c["claim"]: c for c in verdicts.get("claims") or []}
    rows = []
    for curve in verdicts.get("power_curves") or []:
        claim = claims.get(curve.get("label") or curve.get("claim")) or {}
        needed = curve.get("seeds_needed", claim.get("seeds_needed"))
        rows.append({**curve, "label": curve.get("label") or curve.get("claim"),
                     "seeds_needed": needed if finite(needed) else None})
    return rows


def seed_epochs(tables) -> pd.DataFrame | None:
    """epochs.csv rows of seed-phase runs with their variant (joined from results.csv by run_id)."""
    epochs = getattr(tables, "epochs", None)
    if epochs is None or epochs.empty:
        return None
    if "run_id" in epochs.columns:
        info = tables.results[["run_id", "variant", "phase"]].drop_duplicates("run_id", keep="last")
        epochs = epochs.astype({"run_id": str}).drop(columns=[c for c in ("variant", "phase") if c in epochs])
        epochs = epochs.merge(info.astype({"run_id": str}), on="run_id", how="inner")
    if "variant" not in epochs.columns:
        return None
    if "phase" in epochs.columns and (epochs["phase"] == "seed").any():
        epochs = epochs[epochs["phase"] == "seed"]
    return epochs.dropna(subset=["epoch", "val_miou"])


def _optuna_plots(tables, order: list[str], seed: int, add) -> None:
    if getattr(tables, "storage_path", None) is None:
        return
    import optuna

    from analysis.run_reader import load_tune_studies

    for variant, study in load_tune_studies(tables.storage_path, order).items():
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        reason = None if len(complete) >= 2 else f"{len(complete)} complete trial(s): need 2"
        add(f"optuna_history_{variant}", lambda s=study, v=variant: P.plot_optimization_history(s, v), reason)
        add(f"param_importance_{variant}", lambda s=study, v=variant: P.plot_param_importances(s, v, seed=seed),
            reason)
