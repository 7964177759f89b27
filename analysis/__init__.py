"""Statistics and reporting over a run directory's tables; never imports torch.

``analyze(run_dir)`` returns exactly what it writes to ``report/verdicts.json``.
The import is kept light (everything heavy is imported inside ``analyze``) because
``ablate.study`` imports ``analysis.claims`` on the training path.

verdicts.json, schema_version 1 (NaN is written as ``null``; fractions are in [0, 1]
unless a key says ``pct``; relative effects are ``variant / baseline - 1``)::

    schema_version  1
    run_dir         str, the analysed directory
    study           str | null, study name (study.json, else results.csv)
    baseline        str | null, the variant every effect is measured against
    alpha           float, two-sided level of every CI (1 - alpha coverage)
    seed            int, seeds every bootstrap / permutation
    n_boot          int, bootstrap resamples (seed-level BCa and image-level)
    claims          list, one dict per claim (from analysis.claims.evaluate_claims):
                      claim, variant, baseline, metric, band [lo, hi], relative, n (paired seeds or rounds),
                      estimate, ci [lo, hi], ci_method (in the claim's unit: relative or absolute),
                      estimate_abs, ci_abs (absolute: mIoU fraction / images per s),
                      p_superiority, p_superiority_holm, p_equivalence, p_equivalence_holm,
                      effect_sizes {d_z, g_av, prob_improvement}, power (at n, band's lower edge),
                      mde, seeds_needed (80 % power),
                      verdict "supported" | "refuted" | "inconclusive",
                      direction null | "too small" | "too large" | "wrong direction", reason (one sentence)
    comparisons     list, every non-baseline variant vs the baseline on mIoU, paired by seed:
                      variant, baseline, metric, seeds, unpaired_seeds, n, and analysis.stats.paired_effect's keys
                      (mean_diff, ci_t, ci_bca, rel_diff, rel_ci, p_ttest, p_wilcoxon, p_permutation, d_z, g_av,
                      prob_improvement), p_holm (Holm over variants, paired t), p_permutation_holm;
                      reason when it could not be computed
    variants        {name: {n_seeds, n_runs, n_failed, n_pruned, n_tune_trials, decoder, miou_mean, miou_sd,
                      miou_min, miou_max, zero_variance, pixel_acc_mean, ..., params_m, gflops,
                      fps_median, fps_q25, fps_q75, ms_median, ms_q25, ms_q75, n_rounds, class_iou {class: mean}}}
    test_set        {available, reason?, variants: {name: {n_runs, n_images, sd_over_seeds, mean_bootstrap_se,
                      seed_share_of_variance, runs: [{seed, run_id, n_images, miou, ci, se}]}},
                      paired_vs_baseline: {name: {seed, ...paired_image_bootstrap keys}}}
    latency         {available, reason?, setting {device, dtype, batch, threads, height, width},
                      variants {name: {n_rounds, ms_*, fps_*}}, ratio_vs_baseline {name: throughput_ratio keys}}
    power_curves    list of {label, n [..], power [..], current_n} (one per seed-level claim)
    warnings        list of str: everything dropped, skipped or doubtful, in plain words
    environment     {device, torch, pretrained, image_size, transformers, ... (results.csv, study.json),
                      analysis {python, numpy, pandas, scipy, statsmodels}}
    report          {dir, markdown, html, plots {name: png path}} (when written)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["analyze"]


def analyze(run_dir, claims=None, baseline=None, alpha=0.05, seed=0, *, n_boot=10000, write=True,
            progress=False) -> dict:
    """Verdicts, tests and (with ``write``) plots and a report for the run in ``run_dir``.

    ``claims``: strings (``"skip_fused miou +2%..+3%"``), ``Claim`` objects or dicts;
    default: study.json's. ``baseline``: default study.json's. Raises
    ``analysis.tables.RunDirError`` only when the directory or results.csv cannot
    be read; everything else thin or odd becomes an inconclusive verdict and a warning.
    """
    from analysis import summary as S
    from analysis.tables import load_run, seed_rows

    def step(message: str) -> None:
        if progress:
            print(f"analyze: {message}", file=sys.stderr, flush=True)

    if not 0 < alpha < 1:
        from ablate.errors import ConfigError

        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}: pass e.g. --alpha 0.05")
    step("reading tables")
    tables = load_run(run_dir)
    warnings = list(tables.warnings)
    baseline = baseline or tables.study.get("baseline")
    seeds = seed_rows(tables.results, warnings)
    order = S.variant_order(tables, baseline)
    _check_baseline_and_data(tables, seeds, baseline, order, warnings)

    step("latency")
    latency = S.latency_summary(tables.latency, order, baseline, alpha=alpha, seed=seed, n_boot=n_boot,
                                warnings=warnings)
    if not latency["available"]:
        warnings.append(f"latency: {latency['reason']}; speed claims stay inconclusive")
    step("claims")
    claim_objects = S.resolve_claims(claims, tables.study, warnings)
    claim_verdicts = S.evaluate_all_claims(claim_objects, seeds, tables.latency, baseline=baseline, alpha=alpha,
                                           seed=seed, n_boot=n_boot, warnings=warnings)
    step("paired comparisons")
    comparisons = _guard(lambda: S.compare_to_baseline(seeds, order, baseline, alpha=alpha, seed=seed,
                                                       n_boot=n_boot), [], "comparisons", warnings)
    _warn_zero_variance(seeds, order, warnings)
    step("test-set bootstrap")
    test_set = _guard(lambda: S.test_set_uncertainty(tables, seeds, order, baseline, alpha=alpha, seed=seed,
                                                     n_boot=n_boot, warnings=warnings),
                      {"available": False, "reason": "failed"}, "test-set bootstrap", warnings)

    verdicts = {
        "schema_version": S.SCHEMA_VERSION,
        "run_dir": str(run_dir),
        "study": tables.study.get("name") or _first_value(tables.results, "study"),
        "baseline": baseline,
        "alpha": alpha,
        "seed": seed,
        "n_boot": n_boot,
        "claims": claim_verdicts,
        "comparisons": comparisons,
        "variants": S.variant_summaries(tables, seeds, order, latency.get("variants", {})),
        "test_set": test_set,
        "latency": latency,
        "power_curves": _guard(lambda: S.power_curves(S.to_jsonable(claim_verdicts), alpha=alpha), [], "power curves",
                               warnings),
        "warnings": warnings,
        "environment": S.environment(tables.results, tables.study),
    }
    verdicts = S.to_jsonable(verdicts)
    if write:
        step("plots and report")
        from analysis.report import write_report

        verdicts["report"] = write_report(verdicts, tables, seeds, seed=seed)
        out = Path(run_dir) / "report" / "verdicts.json"
        out.write_text(json.dumps(verdicts, indent=2) + "\n")
        step(f"wrote {out.parent}")
    return verdicts


def _guard(compute, fallback, what: str, warnings: list[str]):
    # Any section may fail on data nobody anticipated; the rest of verdicts.json still stands.
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"{what} skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return fallback


def _check_baseline_and_data(tables, seeds, baseline, order, warnings) -> None:
    if tables.results.empty:
        warnings.append("results.csv has no rows: nothing has finished yet")
    elif seeds.empty:
        warnings.append("no finished seed run with a finite mIoU: every run failed or is missing; nothing to compare")
    if baseline is None:
        warnings.append(f"no baseline named: pass --baseline NAME (variants: {', '.join(order) or 'none'})")
    elif baseline not in set(seeds["variant"]):
        warnings.append(f"baseline '{baseline}' has no finished seed run: every comparison is inconclusive")


def _warn_zero_variance(seeds, order, warnings) -> None:
    for variant in order:
        miou = seeds.loc[seeds["variant"] == variant, "miou"]
        if len(miou) > 1 and miou.nunique() == 1:
            warnings.append(f"{variant}: every seed gave the same mIoU ({miou.iloc[0]:.4f}); check the runs really differ")


def _first_value(frame, column):
    if column not in frame or frame[column].dropna().empty:
        return None
    value = frame[column].dropna().iloc[0]
    return str(value) if str(value) else None
