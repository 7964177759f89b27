"""An independent simulator of whole run directories with a known truth, for the decision checks.

Known components of the paired mIoU effect (nothing here calls the estimators under test):
per (variant, seed) an accuracy shift ~ N(0, sd_seed) (training randomness), per (variant, image) a shift
~ N(0, sd_image) shared by every seed (the finite test set), binomial pixels (seed x image noise); an
optional per-(variant, budget) shift for budget studies. The truth is the expected log mIoU ratio over
seeds on infinitely many images (``true_log_ratio``, exact expectations). ``write_run_dir`` writes the
ablate/rundir schema (results.csv, confusion/*.npz, study.json) that ``analysis.analyze`` and
``analysis.SeedGate`` read.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

N_CLASSES = 5
CLASS_BASE = np.linspace(0.6, 0.72, N_CLASSES)
_IDX = np.arange(N_CLASSES)


def _miou_of_accuracy(p: np.ndarray) -> np.ndarray:
    """mIoU of infinitely many pixels with per-class accuracy ``p`` [..., C] (wrong pixels go to the next class)."""
    tp, fn = p, 1 - p
    fp = np.roll(1 - p, 1, axis=-1)  # class c receives the misses of class c - 1
    return np.mean(tp / (tp + fn + fp), axis=-1)


@lru_cache(maxsize=64)
def true_log_ratio(delta: float, sd_seed: float, draws: int = 400_000) -> float:
    """E over seeds of log mIoU(variant) - log mIoU(baseline) on infinitely many images."""
    rng = np.random.default_rng(12345)
    a_v, a_b = rng.normal(0, sd_seed, (2, draws, 1))
    return float(np.mean(np.log(_miou_of_accuracy(np.clip(CLASS_BASE + delta + a_v, 0, 1))
                                / _miou_of_accuracy(np.clip(CLASS_BASE + a_b, 0, 1)))))


def simulate_study(rng, *, n_seeds: int, n_images: int, deltas: dict, sd_seed: float, sd_image: float,
                   pixels: int = 800) -> tuple[pd.DataFrame, dict]:
    """(results rows, {run_id: per-image confusions [N, C, C]}) of one study; ``deltas``: variant -> accuracy shift
    (the first variant is the baseline)."""
    t = rng.poisson(pixels, (n_images, N_CLASSES)) * (rng.random((n_images, N_CLASSES)) < 0.85)
    rows, cms = [], {}
    for variant, delta in deltas.items():
        w = rng.normal(0, sd_image, (n_images, 1))
        shift = rng.normal(0, sd_seed, (n_seeds, 1, 1))
        p = np.clip(CLASS_BASE + delta + shift + w[None], 0, 1)  # [S, N, C]
        right = rng.binomial(t[None], p)
        cm = np.zeros((n_seeds, n_images, N_CLASSES, N_CLASSES), dtype=np.int64)
        cm[:, :, _IDX, _IDX] = right
        cm[:, :, _IDX, (_IDX + 1) % N_CLASSES] = t[None] - right
        total = cm.sum(1).astype(float)  # [S, C, C]
        tp = total[:, _IDX, _IDX]
        union = total.sum(-1) + total.sum(-2) - tp
        miou = np.nanmean(np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan), axis=-1)
        for s in range(n_seeds):
            run_id = f"{variant}-seed{s}"
            cms[run_id] = cm[s]
            rows.append({"study": "sim", "variant": variant, "decoder": variant, "phase": "seed", "run_id": run_id,
                         "trial": "", "seed": s, "split": "test", "miou": float(miou[s]), "status": "ok"})
    return pd.DataFrame(rows), cms


def write_run_dir(root, results: pd.DataFrame, cms: dict, *, baseline: str, claims: list[dict],
                  seeds: list[int] | None = None, budgets: dict | None = None) -> Path:
    """The ablate/rundir schema of one simulated study under ``root``."""
    root = Path(root)
    (root / "confusion").mkdir(parents=True, exist_ok=True)
    results.to_csv(root / "results.csv", index=False)
    for run_id, cm in cms.items():
        np.savez(root / "confusion" / f"{run_id}.npz", per_image=cm)
    variants = list(dict.fromkeys(results["variant"]))
    study = {"name": "sim", "baseline": baseline, "seeds": seeds or sorted(set(results["seed"])),
             "variants": {v: {"decoder": v} for v in variants}, "claims": claims}
    if budgets:
        study["budgets"] = budgets
    (root / "study.json").write_text(json.dumps(study))
    return root
