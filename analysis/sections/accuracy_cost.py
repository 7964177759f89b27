"""Accuracy against cost for a many-variant study (a decoder zoo): each variant's test mIoU with its
seeds x images interval, params / GFLOPs / measured throughput, the Pareto fronts, and the probability
that each variant is the most accurate.

The interval is ``estimators.effects.two_way_level``: the estimator every mIoU verdict uses, on the
variant's own mean instead of a paired effect; P(most accurate) is ``estimators.ranking``'s bootstrap
over seeds and test images. Without per-image confusions both fall back to the seeds alone (said so).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.estimators.effects import two_way_level, unit_effect
from analysis.estimators.ranking import pareto_front, prob_most_accurate

MIN_VARIANTS = 3  # with two variants the paired comparison says it all
N_RESAMPLES = 2000  # MC error of a probability <= 0.011


def accuracy_cost_section(seeds: pd.DataFrame, order: list[str], variants: dict, load, *, alpha: float,
                          seed: int, warnings: list[str]) -> dict:
    """``variants``: verdicts.json's variant summaries (params_m, gflops, fps_median); ``load(run_id)``:
    per-image confusions or None (``load`` itself None without any)."""
    present = [v for v in order if (seeds["variant"] == v).any()]
    if len(present) < MIN_VARIANTS:
        return {"available": False,
                "reason": f"{len(present)} variant(s) with finished seed runs; the view needs {MIN_VARIANTS}"}
    level = 1 - 2 * alpha
    cms = _confusions(seeds, present, load)
    images = {np.shape(cm)[0] for runs in cms.values() for cm in runs.values()}
    use_images = all(len(cms[v]) >= 2 for v in present) and len(images) == 1
    if load is not None and not use_images:
        warnings.append("accuracy vs cost: confusions missing or over different test images; intervals and "
                        "P(most accurate) over seeds only")
    rows = {}
    for variant in present:
        mine = seeds[seeds["variant"] == variant].sort_values("seed")
        if use_images:
            est = two_way_level([cms[variant][s] for s in sorted(cms[variant])])
        else:
            est = unit_effect(mine["miou"].to_numpy(float), unit="seeds")
        summary = variants.get(variant, {})
        rows[variant] = {"miou": est.estimate, "ci": est.interval(level), "se": est.se, "df": est.df,
                         "n_seeds": est.n, "method": est.method, "params_m": summary.get("params_m"),
                         "gflops": summary.get("gflops"), "fps": summary.get("fps_median")}
    if use_images:
        p_best = prob_most_accurate(cms, n_resamples=N_RESAMPLES, random_state=seed)
        p_method = f"{N_RESAMPLES} pigeonhole bootstrap draws over seeds and {images.pop()} test images"
    else:
        per_seed = {v: {int(s): float(m) for s, m in seeds.loc[seeds["variant"] == v, ["seed", "miou"]].itertuples(index=False)}
                    for v in present}
        p_best = prob_most_accurate(per_seed, n_resamples=N_RESAMPLES, random_state=seed)
        p_method = f"{N_RESAMPLES} bootstrap draws over seeds only: no per-image confusions"
    for variant, p in p_best.items():
        rows[variant]["p_most_accurate"] = p
    accuracy = {v: r["miou"] for v, r in rows.items()}
    fronts = {}
    for cost, sign in (("gflops", 1.0), ("params_m", 1.0), ("fps", -1.0)):
        costs = {v: sign * float(r[cost]) for v, r in rows.items() if _finite(r[cost])}
        if len(costs) >= 2:
            fronts[cost] = [v for v in present if v in pareto_front(accuracy, costs)]
    most = max(p_best, key=p_best.get) if p_best else None
    return {"available": True, "level": level, "variants": rows, "pareto": fronts, "most_accurate": most,
            "p_method": p_method}


def _confusions(seeds, present, load) -> dict[str, dict[int, np.ndarray]]:
    out: dict[str, dict[int, np.ndarray]] = {v: {} for v in present}
    if load is None:
        return out
    for variant in present:
        for _, row in seeds[seeds["variant"] == variant].iterrows():
            cm = load(str(row["run_id"]))
            if cm is not None:
                out[variant][int(row["seed"])] = np.asarray(cm)
    return out


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)
