"""verdicts.json's ``latency``: throughput per variant and the speed effects over launches, for the
claims' setting (the one latency-setting rule: ``analysis.run_reader``)."""

from __future__ import annotations

import math

import numpy as np

from analysis.run_reader import RunTables


def latency_section(tables: RunTables, order: list[str], baseline: str | None, *, alpha, warnings) -> tuple:
    """``(section, claim_rows, setting, reason)``: settings found, the claim setting and, on it, per-variant
    speed and each variant's speed vs the baseline by the claims' own estimator (``stats.launch_effect``)."""
    from analysis.estimators.effects import launch_effect
    from analysis.run_reader import claim_latency_rows, latency_settings

    rows, setting, reason = claim_latency_rows(tables.latency, tables.study, warnings)
    section = {"available": rows is not None, "settings": latency_settings(tables.latency),
               "claim_setting": setting, "variants": {}, "ratio_vs_baseline": {}}
    if rows is None:
        section["reason"] = reason
        return section, None, setting, reason
    section["setting"] = setting
    for variant, group in rows.groupby("variant", sort=False):
        ms = group["ms_per_image"].to_numpy(float)
        q25, q50, q75 = np.percentile(ms, [25, 50, 75])
        section["variants"][str(variant)] = {
            "n_rounds": int(len(ms)), "n_launches": int(group["launch"].nunique()) if "launch" in group else 1,
            "ms_median": float(q50), "ms_q25": float(q25), "ms_q75": float(q75),
            "fps_median": 1000.0 / q50, "fps_q25": 1000.0 / q75, "fps_q75": 1000.0 / q25}
    if baseline in section["variants"]:
        for variant in order:
            if variant == baseline or variant not in section["variants"]:
                continue
            est, _ = launch_effect(rows, variant, baseline, relative=True)
            if not est.ok:
                continue
            ci = est.interval(1 - alpha)
            section["ratio_vs_baseline"][variant] = {
                "ratio": math.exp(est.estimate), "ci": [math.exp(x) for x in ci],
                "rel_change": math.expm1(est.estimate), "rel_ci": [math.expm1(x) for x in ci],
                "mean_log_ratio": est.estimate, "sd_log_ratio": est.sd, "se": est.se, "df": est.df, "n": est.n,
                "unit": est.unit, "method": est.method, **est.components}
    return section, rows, setting, None
