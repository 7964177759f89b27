"""verdicts.json's ``variants`` (per-variant summaries) and ``environment`` (what ran where), and the
variants' report order."""

from __future__ import annotations

import platform

import numpy as np
import pandas as pd

from ablate.rundir.metrics import result_metrics
from analysis.run_reader import ENVIRONMENT_COLUMNS, RunTables, class_columns


def variant_order(tables: RunTables, baseline: str | None) -> list[str]:
    """Baseline first, then the study's order, then anything else results.csv names."""
    declared = list(tables.study.get("variants", {}) or {})
    seen = list(dict.fromkeys([*declared, *tables.results["variant"].astype(str)]))
    if baseline in seen:
        seen.remove(baseline)
        seen.insert(0, baseline)
    return seen

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
    data = study.get("data") if isinstance(study.get("data"), dict) else {}
    dataset = study.get("dataset") if isinstance(study.get("dataset"), dict) else {}
    if study.get("preset") is not None:
        env.setdefault("preset", study["preset"])
    if data.get("kind"):  # what the runs were trained and judged on, for the report's opening
        env["data"] = data["kind"]
    if dataset.get("layout") or data.get("layout"):
        env["layout"] = dataset.get("layout") or data.get("layout")
    versions = study.get("versions") if isinstance(study.get("versions"), dict) else {}
    for key in ("transformers", "timm", "segmentation_models_pytorch", "optuna", "ablate"):  # the run's machine
        if versions.get(key) is not None and env.get(key) is None:
            env[key] = versions[key]
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
