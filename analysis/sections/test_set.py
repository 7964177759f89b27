"""verdicts.json's ``test_set``: the seeds x images decomposition of each variant's paired mIoU effect
(every statistic from ``analysis.estimators.effects``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def test_set_section(seeds: pd.DataFrame, order: list[str], baseline: str | None, load, *, alpha, warnings) -> dict:
    """How much of each variant's paired mIoU effect is test-set (image) uncertainty vs seed spread.

    Per run: mIoU from its confusions and its jackknife se over images; per variant: sd over seeds,
    mean image se, seed share; per variant vs baseline: ``stats.two_way_effect`` (absolute mIoU
    difference, seeds x images) with its components. ``load(run_id)`` gives per-image confusions or None.
    """
    from analysis.estimators.effects import jackknife_variance, leave_one_image_out, two_way_effect

    if load is None:
        return {"available": False, "reason": "no confusion/*.npz: the seeds x images analysis needs per-image "
                                              "confusion matrices"}
    out: dict = {"available": True, "variants": {}, "paired_vs_baseline": {}}
    cms: dict[tuple[str, int], np.ndarray] = {}
    for variant in order:
        runs = []
        for _, row in seeds[seeds["variant"] == variant].sort_values("seed").iterrows():
            cm = load(str(row["run_id"]))
            if cm is None:
                continue
            miou, loo = leave_one_image_out(cm)
            cms[(variant, int(row["seed"]))] = cm
            runs.append({"seed": int(row["seed"]), "run_id": str(row["run_id"]), "n_images": int(len(cm)),
                         "miou": miou, "image_se": math.sqrt(jackknife_variance(miou, loo))})
        mious = np.array([r["miou"] for r in runs])
        sd = float(np.std(mious, ddof=1)) if len(mious) > 1 else math.nan
        image_se = float(np.mean([r["image_se"] for r in runs])) if runs else math.nan
        total = sd**2 + image_se**2
        out["variants"][variant] = {"n_runs": len(runs), "n_images": runs[0]["n_images"] if runs else None,
                                    "sd_over_seeds": sd, "mean_image_se": image_se,
                                    "seed_share_of_variance": sd**2 / total if total > 0 else math.nan,
                                    "runs": runs}
    for variant in order:
        if variant == baseline or baseline is None:
            continue
        shared = sorted(s for (v, s) in cms if v == variant and (baseline, s) in cms)
        if len(shared) < 2:
            continue
        try:
            pair = ([cms[(variant, s)] for s in shared], [cms[(baseline, s)] for s in shared])
            est = two_way_effect(*pair, relative=False)
            rel = two_way_effect(*pair, relative=True)  # the forest plot's no-claim rows: the claims' own estimator
        except ValueError as exc:
            warnings.append(f"test set: {variant} vs {baseline}: {exc}")
            continue
        out["paired_vs_baseline"][variant] = {
            "seeds": shared, "delta": est.estimate, "ci": est.interval(1 - alpha), "se": est.se, "df": est.df,
            "sd_seeds": est.sd, "se_image": est.se_fixed, "method": est.method, **est.components,
            "rel_delta": math.expm1(rel.estimate), "rel_ci": [math.expm1(x) for x in rel.interval(1 - alpha)]}
    if not any(v["runs"] for v in out["variants"].values()):
        return {"available": False, "reason": "no confusion/*.npz matches a finished seed run's run_id"}
    return out
