"""The pieces of ``verdicts.json`` other than the claims: per-variant summaries,
paired comparisons vs the baseline, test-set uncertainty, latency, environment.

Each function is pure over the run tables and never raises for thin or odd data:
it returns what can be computed plus a ``reason`` (and appends to ``warnings``),
because ``analyze`` must always produce a valid verdicts.json.
"""

from __future__ import annotations

import math
import platform

import numpy as np
import pandas as pd

from analysis.claims import Claim
from analysis.tables import (
    ENVIRONMENT_COLUMNS,
    RunTables,
    class_columns,
    load_confusion,
    paired_frame,
    unpaired_seeds,
)

SCHEMA_VERSION = 1


# --- JSON --------------------------------------------------------------------------------------


def to_jsonable(value):
    """Plain JSON types all the way down (``analysis.stats.json_safe``); claims become dicts."""
    from ablate.rundir import json_safe

    return json_safe(value)


# --- variants and claims -----------------------------------------------------------------------


def variant_order(tables: RunTables, baseline: str | None) -> list[str]:
    """Baseline first, then the study's order, then anything else results.csv names."""
    declared = list(tables.study.get("variants", {}) or {})
    seen = list(dict.fromkeys([*declared, *tables.results["variant"].astype(str)]))
    if baseline in seen:
        seen.remove(baseline)
        seen.insert(0, baseline)
    return seen


def resolve_claims(claims, study: dict, warnings: list[str]) -> list[Claim]:
    """Claims as ``Claim`` objects: the caller's (strings, dicts or Claims), else study.json's."""
    from analysis.claims import as_claim

    if claims is None:
        claims = study.get("claims") or []
    if isinstance(claims, (str, Claim, dict)):
        claims = [claims]
    resolved = []
    for claim in claims:
        try:
            resolved.append(as_claim(claim))
        except Exception as exc:  # noqa: BLE001 - a bad claim is reported, the others still run
            warnings.append(f"ignored claim {claim!r}: {exc}")
    return resolved


def inconclusive_claim(claim: Claim, baseline: str | None, reason: str) -> dict:
    """A claim verdict when ``evaluate_claims`` itself failed: inconclusive, with the reason."""
    from analysis.claims import format_claim

    return {
        "claim": format_claim(claim), "variant": claim.variant, "baseline": claim.baseline or baseline,
        "metric": claim.metric, "band": list(claim.band), "relative": claim.relative, "n": 0,
        "estimate": None, "ci": [None, None], "ci_method": None, "estimate_abs": None, "ci_abs": [None, None],
        "p_superiority": None, "p_superiority_holm": None, "p_equivalence": None, "p_equivalence_holm": None,
        "effect_sizes": {"d_z": None, "g_av": None, "prob_improvement": None},
        "power": None, "mde": None, "seeds_needed": None,
        "verdict": "inconclusive", "direction": None, "reason": reason,
    }


def evaluate_all_claims(claims: list[Claim], seeds, latency, *, baseline, alpha, seed, n_boot, warnings) -> list[dict]:
    """Claim verdicts from ``analysis.claims.evaluate_claims`` (which answers thin data itself with
    inconclusive verdicts); should it fail anyway, every claim is inconclusive with the reason."""
    if not claims:
        return []
    try:
        from analysis.claims import evaluate_claims

        return list(evaluate_claims(claims, seeds, latency, baseline=baseline, alpha=alpha, random_state=seed,
                                    n_resamples=n_boot))
    except Exception as exc:  # noqa: BLE001 - verdicts.json must still be written
        reason = f"could not be evaluated ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        warnings.append(f"claims {reason}")
        return [inconclusive_claim(c, baseline, reason) for c in claims]


# --- comparisons -------------------------------------------------------------------------------


def compare_to_baseline(seeds: pd.DataFrame, order: list[str], baseline: str | None, *, alpha, seed, n_boot,
                        metric: str = "miou") -> list[dict]:
    """Paired effect on ``metric`` of every variant vs the baseline, Holm-corrected across variants."""
    from analysis.stats import paired_effect

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
        try:
            effect = paired_effect(pairs["variant"].to_numpy(float), pairs["baseline"].to_numpy(float),
                                   alpha=alpha, n_resamples=n_boot, random_state=seed)
            comparisons.append({**row, **effect})
        except Exception as exc:  # noqa: BLE001
            comparisons.append({**row, "n": len(pairs), "reason": f"{type(exc).__name__}: {exc}"})
    _add_holm(comparisons, "p_ttest", "p_holm")
    _add_holm(comparisons, "p_permutation", "p_permutation_holm")
    return comparisons


def _add_holm(rows: list[dict], key: str, out: str) -> None:
    """Holm step-down adjustment of ``rows[*][key]`` (missing p-values stay missing)."""
    ps = [(i, r.get(key)) for i, r in enumerate(rows)]
    ps = [(i, float(p)) for i, p in ps if p is not None and np.isfinite(p)]
    for r in rows:
        r.setdefault(out, None)
    if not ps:
        return
    m = len(ps)
    running = 0.0
    for rank, (i, p) in enumerate(sorted(ps, key=lambda t: t[1])):
        running = max(running, min(1.0, (m - rank) * p))
        rows[i][out] = running


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
        for column in ("pixel_acc", "mean_acc", "fwiou", "train_seconds"):
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


def class_tables(summaries: dict, baseline: str | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Variant × class IoU means, and the deltas vs the baseline (``None`` without a baseline)."""
    iou = pd.DataFrame({v: s["class_iou"] for v, s in summaries.items() if s["class_iou"]}).T
    if iou.empty or baseline not in iou.index:
        return iou.astype(float), None
    delta = (iou.drop(index=baseline) - iou.loc[baseline]).astype(float)
    return iou.astype(float), delta


# --- test set ----------------------------------------------------------------------------------


def test_set_uncertainty(tables: RunTables, seeds: pd.DataFrame, order: list[str], baseline: str | None, *,
                         alpha, seed, n_boot, warnings) -> dict:
    """Image-bootstrap mIoU CI of every seed run, and how seed spread compares with test-set spread.

    sd over seeds measures training randomness (the test set is the same for every
    seed); the mean bootstrap se measures how much the mIoU would move on another
    test set of the same size. Their squares' shares show which one dominates.
    """
    from analysis.stats import image_bootstrap_miou, paired_image_bootstrap

    if not tables.confusion_paths:
        return {"available": False, "reason": "no confusion/*.npz: the image-level bootstrap needs per-image matrices"}
    out: dict = {"available": True, "variants": {}}
    loaded: dict[tuple[str, int], object] = {}
    for variant in order:
        runs = []
        for _, row in seeds[seeds["variant"] == variant].sort_values("seed").iterrows():
            path = tables.confusion_paths.get(str(row["run_id"]))
            if path is None:
                continue
            try:
                cm = load_confusion(path)
                boot = image_bootstrap_miou(cm.per_image, n_resamples=n_boot, alpha=alpha, random_state=seed)
            except Exception as exc:  # noqa: BLE001
                warnings.append(f"test-set bootstrap skipped for {path.name}: {exc}")
                continue
            loaded[(variant, int(row["seed"]))] = cm
            runs.append({"seed": int(row["seed"]), "run_id": str(row["run_id"]), "n_images": len(cm.per_image),
                         **{k: boot.get(k) for k in ("miou", "ci", "se")}})
        out["variants"][variant] = _decompose(runs, seeds[seeds["variant"] == variant]["miou"].to_numpy(float))
    if baseline is not None:
        out["paired_vs_baseline"] = _paired_image_deltas(loaded, order, baseline, paired_image_bootstrap,
                                                         alpha=alpha, seed=seed, n_boot=n_boot, warnings=warnings)
    if not any(v["runs"] for v in out["variants"].values()):
        return {"available": False, "reason": "no confusion/*.npz matches a finished seed run's run_id"}
    return out


def _decompose(runs: list[dict], seed_miou: np.ndarray) -> dict:
    ses = np.array([r["se"] for r in runs if r.get("se") is not None], dtype=float)
    sd_seeds = float(np.std(seed_miou, ddof=1)) if len(seed_miou) > 1 else None
    se_test = float(np.mean(ses)) if len(ses) else None
    share = None
    if sd_seeds is not None and se_test is not None and (sd_seeds**2 + se_test**2) > 0:
        share = sd_seeds**2 / (sd_seeds**2 + se_test**2)
    return {"n_runs": len(runs), "n_images": runs[0]["n_images"] if runs else None,
            "sd_over_seeds": sd_seeds, "mean_bootstrap_se": se_test, "seed_share_of_variance": share, "runs": runs}


def _paired_image_deltas(loaded, order, baseline, paired_image_bootstrap, *, alpha, seed, n_boot, warnings) -> dict:
    """Δ mIoU vs the baseline on the same test images, for one representative (the lowest shared) seed."""
    deltas = {}
    for variant in order:
        if variant == baseline:
            continue
        shared = sorted(s for (v, s) in loaded if v == variant and (baseline, s) in loaded)
        if not shared:
            continue
        mine, theirs = loaded[(variant, shared[0])], loaded[(baseline, shared[0])]
        if mine.per_image.shape != theirs.per_image.shape or (mine.names and mine.names != theirs.names):
            warnings.append(f"test images differ between {variant} and {baseline}: no paired image bootstrap")
            continue
        try:
            result = paired_image_bootstrap(mine.per_image, theirs.per_image, n_resamples=n_boot, alpha=alpha,
                                            random_state=seed)
        except Exception as exc:  # noqa: BLE001
            warnings.append(f"paired image bootstrap failed for {variant}: {exc}")
            continue
        deltas[variant] = {"seed": shared[0], **result}
    return deltas


# --- latency -----------------------------------------------------------------------------------


def latency_summary(latency: pd.DataFrame | None, order: list[str], baseline: str | None, *, alpha, seed, n_boot,
                    warnings) -> dict:
    if latency is None or latency.empty or latency["ms_per_image"].dropna().empty:
        return {"available": False, "reason": "no latency rounds (latency.csv missing or empty)", "variants": {}}
    rows = latency.dropna(subset=["ms_per_image"])
    rows = rows[rows["ms_per_image"] > 0]
    rows = _one_setting(rows, warnings)
    variants = {}
    for variant, group in rows.groupby("variant", sort=False):
        ms = group["ms_per_image"].to_numpy(float)
        q25, q50, q75 = np.percentile(ms, [25, 50, 75])
        variants[variant] = {"n_rounds": int(len(ms)), "ms_median": float(q50), "ms_q25": float(q25),
                             "ms_q75": float(q75), "fps_median": 1000.0 / q50, "fps_q25": 1000.0 / q75,
                             "fps_q75": 1000.0 / q25}
    out = {"available": True, "setting": _setting(rows), "variants": variants, "ratio_vs_baseline": {}}
    if baseline in variants:
        out["ratio_vs_baseline"] = _throughput_ratios(rows, order, baseline, alpha=alpha, seed=seed, n_boot=n_boot,
                                                      warnings=warnings)
    return out


def _one_setting(rows: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """Keep one latency setting, as the speed claims do: batch 1 (else the smallest batch), then the
    most common (dtype, size, threads, device); throughput ratios only compare like with like."""
    if "batch" in rows.columns and rows["batch"].nunique() > 1:
        batches = set(pd.to_numeric(rows["batch"], errors="coerce").dropna())
        batch = 1 if 1 in batches else min(batches)
        warnings.append(f"latency.csv holds several batch sizes: summarising batch {batch:g}")
        rows = rows[pd.to_numeric(rows["batch"], errors="coerce") == batch]
    keys = [c for c in ("dtype", "height", "width", "threads", "device") if c in rows.columns]
    if not keys or rows[keys].drop_duplicates().shape[0] <= 1:
        return rows
    counts = rows.groupby(keys, dropna=False).size().sort_values(ascending=False)
    chosen = counts.index[0] if len(keys) > 1 else (counts.index[0],)
    mask = np.logical_and.reduce([rows[k] == v for k, v in zip(keys, chosen)])
    warnings.append(f"latency.csv mixes settings: using {dict(zip(keys, chosen))} only")
    return rows[mask]


def _setting(rows: pd.DataFrame) -> dict:
    setting = {}
    for column in ("device", "dtype", "batch", "threads", "height", "width"):
        if column in rows.columns and rows[column].notna().any():
            setting[column] = rows[column].dropna().iloc[0]
    return setting


def _throughput_ratios(rows, order, baseline, *, alpha, seed, n_boot, warnings) -> dict:
    from analysis.stats import throughput_ratio

    base = rows[rows["variant"] == baseline].groupby("round")["ms_per_image"].median()
    ratios = {}
    for variant in order:
        if variant == baseline or variant not in set(rows["variant"]):
            continue
        mine = rows[rows["variant"] == variant].groupby("round")["ms_per_image"].median()
        paired = pd.concat([mine.rename("v"), base.rename("b")], axis=1).dropna()
        if len(paired) < 2:
            warnings.append(f"latency: fewer than 2 shared rounds of {variant} and {baseline}")
            continue
        try:
            ratios[variant] = throughput_ratio(paired["v"].to_numpy(float), paired["b"].to_numpy(float),
                                               alpha=alpha, n_resamples=n_boot, random_state=seed)
        except Exception as exc:  # noqa: BLE001
            warnings.append(f"latency ratio failed for {variant}: {exc}")
    return ratios


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


# --- power -------------------------------------------------------------------------------------


def power_curves(claims: list[dict], *, alpha: float, max_n: int = 40) -> list[dict]:
    """Power vs paired seeds for each seed-level claim with a one-sided band, at the edge nearest 0.

    Same test and scale as the claim's own power figure (``analysis.power``): the observed sd
    of the paired differences (log ratios for relative claims), one-sided paired t-test.
    """
    from analysis.power import power_curve

    curves = []
    for claim in claims:
        lo, hi = claim.get("band") or (0, 0)
        effect, sd, n = claim.get("power_effect"), claim.get("sd"), claim.get("n") or 0
        if claim.get("metric") == "fps" or lo < 0 < hi or effect is None or not sd or n < 2:
            continue
        effect_x = math.log1p(effect) if claim.get("relative") else effect
        ns = list(range(2, max(max_n, 2 * n) + 1))
        curve = power_curve(ns, effect_x, sd, alpha=alpha)
        curves.append({"label": claim["claim"], "n": ns, "power": curve["power"], "current_n": int(n),
                       "effect": effect, "sd": sd})
    return curves


def forest_rows(verdicts: dict) -> list[dict]:
    """Rows for the forest plot: each variant's relative mIoU and fps change, with its claimed band.

    ``ci`` is the 1 − alpha interval; ``ci_verdict`` the 1 − 2·alpha interval the band
    verdicts use (the claim's own when there is a claim, else a t-interval on the log ratios).
    """
    alpha = verdicts["alpha"]
    baseline_miou = (verdicts["variants"].get(verdicts.get("baseline")) or {}).get("miou_mean")
    claims = {}
    for claim in verdicts["claims"]:
        if claim.get("band") is None or claim.get("estimate") is None:
            continue
        if not claim.get("relative") and (claim["metric"] != "miou" or not baseline_miou):
            continue  # an absolute band on another scale has no place on a relative axis
        claims.setdefault((claim["variant"], claim["metric"]), claim)
    rows = []
    for comp in verdicts["comparisons"]:
        fallback = _log_t_interval(comp.get("rel_diff"), comp.get("sd_log_ratio"), comp.get("n"), alpha)
        rows.append(_forest_row(comp["variant"], "miou", comp.get("rel_diff"), interval(comp.get("rel_ci")),
                                fallback, claims, baseline_miou))
    for variant, ratio in (verdicts["latency"].get("ratio_vs_baseline") or {}).items():
        estimate, ci = _ratio_as_change(ratio)
        mean_log = ratio.get("mean_log_ratio")
        fallback = _log_t_interval(None if mean_log is None else math.expm1(mean_log), ratio.get("sd_log_ratio"),
                                   ratio.get("n_rounds"), alpha)
        rows.append(_forest_row(variant, "fps", estimate, ci, fallback, claims, baseline_miou))
    return rows


def _forest_row(variant, metric, estimate, ci, fallback_ci, claims, baseline_miou) -> dict:
    claim = claims.get((variant, metric))
    row = {"label": f"{variant} · {'mIoU' if metric == 'miou' else 'fps'}", "group": metric, "estimate": estimate,
           "ci": ci, "ci_verdict": fallback_ci, "band": None, "verdict": None, "direction": None}
    if claim is None:
        return row
    band = claim["band"]
    if claim.get("relative"):
        row["ci_verdict"] = interval(claim.get("ci"))
    else:
        band = [band[0] / baseline_miou, band[1] / baseline_miou]
    return {**row, "band": band, "verdict": claim.get("verdict"), "direction": claim.get("direction")}


def _log_t_interval(rel, sd_log, n, alpha) -> list | None:
    """(1 − 2·alpha) t-interval of a geometric-mean ratio − 1, from the log ratios' mean and sd."""
    from scipy import stats

    if rel is None or sd_log is None or not n or n < 2 or rel <= -1:
        return None
    half = stats.t.ppf(1 - alpha, n - 1) * sd_log / math.sqrt(n)
    centre = math.log1p(rel)
    return [math.expm1(centre - half), math.expm1(centre + half)]


def interval(value) -> list | None:
    """A ``[lo, hi]`` from the shapes the stats helpers use: a pair, or a dict of named intervals."""
    if value is None:
        return None
    if isinstance(value, dict):
        for key in ("bca", "t", "percentile"):
            if value.get(key) is not None:
                return list(value[key])
        return next((list(v) for v in value.values() if v is not None), None)
    return list(value)


def _ratio_as_change(ratio: dict) -> tuple:
    """fps ratio (variant/baseline) as a relative change, ratio − 1."""
    value = ratio.get("ratio", ratio.get("estimate"))
    ci = interval(ratio.get("ci"))
    if value is None:
        return None, None
    return value - 1, ([ci[0] - 1, ci[1] - 1] if ci and None not in ci else None)
