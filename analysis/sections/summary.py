"""The sections of ``verdicts.json`` besides the verdicts: variants, comparisons, test set,
latency, power curves, environment. Pure over the run tables; every statistic comes from
``analysis.estimators.effects`` (one interval engine) and every table rule from ``analysis.run_reader``.

Each function returns what can be computed and appends to ``warnings`` for the rest, because
``analyze`` must always produce a valid verdicts.json.
"""

from __future__ import annotations

import math
import platform

import numpy as np
import pandas as pd

from ablate.rundir.metrics import result_metrics
from analysis.run_reader import ENVIRONMENT_COLUMNS, RunTables, class_columns, paired_frame, unpaired_seeds

# --- variants and claims -----------------------------------------------------------------------


def variant_order(tables: RunTables, baseline: str | None) -> list[str]:
    """Baseline first, then the study's order, then anything else results.csv names."""
    declared = list(tables.study.get("variants", {}) or {})
    seen = list(dict.fromkeys([*declared, *tables.results["variant"].astype(str)]))
    if baseline in seen:
        seen.remove(baseline)
        seen.insert(0, baseline)
    return seen


def resolve_claims(claims, study: dict) -> list:
    """Claims as ``Claim`` objects: the caller's (strings, dicts or Claims), else study.json's.

    A claim that cannot be read raises ``ClaimError`` (a user error: exit code 2 on the CLI).
    """
    from ablate.study.claim import Claim, as_claim

    if claims is None:
        claims = study.get("claims") or []
    if isinstance(claims, (str, Claim, dict)):
        claims = [claims]
    return [as_claim(c) for c in claims]


# --- comparisons -------------------------------------------------------------------------------


def compare_to_baseline(seeds: pd.DataFrame, order: list[str], baseline: str | None, *, alpha, seed, n_boot,
                        metric: str = "miou") -> list[dict]:
    """Paired effect on ``metric`` of every variant vs the baseline (``stats.paired_comparison``), Holm over variants."""
    from analysis.estimators.effects import holm, paired_comparison

    comparisons = []
    for variant in order:
        if variant == baseline:
            continue
        row = {"variant": variant, "baseline": baseline, "metric": metric}
        if baseline is None:
            comparisons.append({**row, "n": 0, "reason": "no baseline named"})
            continue
        pairs = paired_frame(seeds, variant, baseline, metric)
        row["seeds"] = [int(s) for s in pairs["seed"]]
        row["unpaired_seeds"] = unpaired_seeds(seeds, variant, baseline)
        if len(pairs) < 2:
            comparisons.append({**row, "n": len(pairs), "reason": f"only {len(pairs)} paired seed(s): need 2"})
            continue
        comparisons.append({**row, **paired_comparison(pairs["variant"].to_numpy(float),
                                                       pairs["baseline"].to_numpy(float), alpha=alpha,
                                                       n_resamples=n_boot, random_state=seed)})
    for key, out in (("p_ttest", "p_holm"), ("p_permutation", "p_permutation_holm")):
        adjusted = holm([c.get(key, math.nan) for c in comparisons])
        for c, p in zip(comparisons, adjusted):
            c[out] = float(p)
    return comparisons


# --- per variant -------------------------------------------------------------------------------


def variant_summaries(tables: RunTables, seeds: pd.DataFrame, order: list[str], latency_stats: dict) -> dict:
    results = tables.results
    summaries = {}
    for variant in order:
        runs = results[results["variant"] == variant]
        mine = seeds[seeds["variant"] == variant]
        miou = mine["miou"].to_numpy(float)
        summary = {
            "n_seeds": int(len(mine)),
            "n_runs": int(len(runs)),
            "n_failed": int((runs["status"] == "failed").sum()),
            "n_pruned": int((runs["status"] == "pruned").sum()),
            "n_tune_trials": int((runs["phase"] == "tune").sum()),
            "decoder": _first(runs, "decoder"),
            "miou_mean": _mean(miou),
            "miou_sd": float(np.std(miou, ddof=1)) if len(miou) > 1 else None,
            "miou_min": float(miou.min()) if len(miou) else None,
            "miou_max": float(miou.max()) if len(miou) else None,
            "zero_variance": bool(len(miou) > 1 and np.ptp(miou) == 0),
        }
        for column in (*(m for m in result_metrics() if m != "miou"), "train_seconds"):  # miou: its own keys above
            if column in mine:
                summary[f"{column}_mean"] = _mean(mine[column].to_numpy(float))
        for column in ("params_m", "gflops"):
            summary[column] = _first_number(mine if len(mine) else runs, column)
        summary.update(latency_stats.get(variant, {"fps_median": None, "ms_median": None}))
        summary["class_iou"] = {c[4:]: _mean(mine[c].to_numpy(float)) for c in class_columns(mine)}
        summaries[variant] = summary
    return summaries


def _mean(x: np.ndarray):
    x = x[np.isfinite(x)] if len(x) else x
    return float(np.mean(x)) if len(x) else None


def _first(frame: pd.DataFrame, column: str):
    if column not in frame or frame[column].dropna().empty:
        return None
    return frame[column].dropna().iloc[0]


def _first_number(frame: pd.DataFrame, column: str):
    if column not in frame:
        return None
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.iloc[0]) if len(values) else None


# --- test set ----------------------------------------------------------------------------------


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


# --- latency -----------------------------------------------------------------------------------


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


# --- power -------------------------------------------------------------------------------------


def power_curves(claims: list, *, alpha: float, min_n: int = 40) -> list[dict]:
    """Verdict probabilities vs units for each claim (``analysis.estimators.verdict_power.power_curve``): one quantity per name,
    the same as the verdict table's "n needed (supported / settled)".

    ``supported``: P(supported) if the true effect is the band's midpoint (the claim as stated; the table's
    ``seeds_needed``); ``settled``: P(supported or refuted) if the true effect is as estimated (the table's
    ``seeds_to_settle``). The curve runs from 2 to past both, so each 80 % crossing is on its drawn line;
    when 80 % supported is out of reach it runs to ``analysis.estimators.verdict_power.MAX_N`` and says so (``capped``).
    """
    from analysis.estimators.verdict_power import power_curve

    curves = []
    for cv in claims:
        if cv.n < 2 or not (np.isfinite(cv.sd) and np.isfinite(cv.se_fixed)) or cv.sd + cv.se_fixed <= 0:
            continue
        lo, hi = cv.band
        band_x = (math.log1p(lo), math.log1p(hi)) if cv.relative else (lo, hi)
        ns = curve_ns(cv.n, cv.seeds_needed, min_n=min_n, also=cv.seeds_to_settle)
        kw = dict(sd=cv.sd, band=band_x, alpha=alpha, ns=ns, se_fixed=cv.se_fixed,
                  image_df=cv.image_df if cv.image_df is not None else math.inf)
        curve = power_curve((band_x[0] + band_x[1]) / 2, **kw)
        settled = (power_curve(cv.test_estimate, **kw)["settled"] if np.isfinite(cv.test_estimate)
                   else None)
        curves.append({"label": cv.claim, "claim": cv.claim, "n": curve["n"], "supported": curve["supported"],
                       "settled": settled, "current_n": int(cv.n), "unit": cv.n_unit,
                       "effect": cv.power_effect, "settled_effect": cv.estimate, "sd": cv.sd,
                       "se_fixed": cv.se_fixed, "band": list(cv.band), "seeds_needed": cv.seeds_needed,
                       "seeds_to_settle": cv.seeds_to_settle, "max_n": ns[-1], "capped": cv.seeds_needed is None})
    return curves


def curve_ns(current_n: int, needed: int | None, *, min_n: int = 40, also: int | None = None) -> list[int]:
    """Unit counts of a power curve: every n from 2 to 100, then about 120 log-spaced ones, up to
    max(min_n, 2 * current_n, 1.25 * needed), or to ``analysis.estimators.verdict_power.MAX_N`` when ``needed`` is None
    (80 % not reached by then); ``needed`` itself always included."""
    from analysis.estimators.verdict_power import MAX_N

    top = max(min_n, 2 * int(current_n))
    top = MAX_N if needed is None else min(max(top, math.ceil(1.25 * needed)), MAX_N)
    ns = set(range(2, min(top, 100) + 1))
    if top > 100:
        ns |= {int(k) for k in np.unique(np.round(np.geomspace(100, top, 120)))}
    for n in (needed, also):  # ``also``: another marked n (seeds to settle), drawn when inside the range
        if n is not None and 2 <= n <= MAX_N:
            ns.add(int(n))
    if also is not None and also > top:
        ns |= {int(k) for k in np.unique(np.round(np.geomspace(top, min(MAX_N, math.ceil(1.25 * also)), 40)))}
    return sorted(ns)


# --- environment -------------------------------------------------------------------------------


def environment(results: pd.DataFrame, study: dict) -> dict:
    """How the numbers were made (from results.csv and study.json), and what analysed them."""
    env: dict = {}
    for column in ENVIRONMENT_COLUMNS:
        if column in results.columns:
            values = [_plain(v) for v in results[column].dropna().unique()]
            env[column] = values[0] if len(values) == 1 else (values or None)
    for source in (study.get("environment"), study.get("settings"), study, study.get("train")):
        if isinstance(source, dict):
            for key in ("device", "torch", "transformers", "timm", "pretrained", "image_size", "epochs",
                        "batch_size", "lr", "optimizer", "data", "dataset", "seeds", "python"):
                if key in source and not isinstance(source[key], dict) and key not in env:
                    env[key] = source[key]
    for key in ("device", "torch", "transformers", "pretrained", "image_size"):
        env.setdefault(key, None)  # stable keys: null says "not recorded by this run"
    env["analysis"] = _analysis_versions()
    return env


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _analysis_versions() -> dict:
    import scipy
    import statsmodels

    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "scipy": scipy.__version__, "statsmodels": statsmodels.__version__}


