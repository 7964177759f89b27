"""Synthetic run directories (the ablate/rundir schema) with planted effects, for the analysis tests.

Every run's per-image confusion matrices are simulated from a per-class
accuracy, and results.csv's mIoU / per-class IoU are computed from those same
matrices, so the seed-level and image-level analyses see consistent numbers.
The variants share a per-seed offset (that is what pairing by seed exploits).

``python tests/analysis_runs.py`` times ``analyze`` on the issue's benchmark
fixture: 4 variants × 10 seeds, 233 test images, n_boot = 10,000.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
           "Bicyclist")
VARIANTS = ("all_mlp", "progressive", "skip_fused", "unet_r34")
# Shift of every class's pixel accuracy vs the baseline: skip_fused gets a large gain (about +7 %
# relative mIoU), progressive none at all, unet_r34 a loss.
ACCURACY_SHIFT = {"all_mlp": 0.0, "progressive": 0.0, "skip_fused": 0.035, "unet_r34": -0.04}
MS_PER_IMAGE = {"all_mlp": 10.0, "progressive": 11.0, "skip_fused": 12.5, "unet_r34": 20.0}  # skip_fused: -20 % fps
CLAIMS = [
    {"variant": "skip_fused", "metric": "miou", "band": [0.02, 0.12], "relative": True, "baseline": None},
    {"variant": "progressive", "metric": "miou", "band": [0.02, 0.03], "relative": True, "baseline": None},
    {"variant": "skip_fused", "metric": "fps", "band": [-0.25, -0.15], "relative": True, "baseline": None},
]


def miou_of(cm: np.ndarray) -> tuple[float, np.ndarray]:
    tp = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return float(np.nanmean(iou)), iou


def simulate_confusion(truth: np.ndarray, accuracy: np.ndarray, rng) -> np.ndarray:
    """[N, C, C] confusions: class c's pixels are right with prob. accuracy[c], else uniformly wrong."""
    n, c = truth.shape
    right = rng.binomial(truth, accuracy if accuracy.ndim == 2 else accuracy[None, :])
    wrong = truth - right
    spill = rng.multinomial(wrong, np.full(c - 1, 1.0 / (c - 1)))  # [N, C, C-1]
    cm = np.zeros((n, c, c), dtype=np.int64)
    off = ~np.eye(c, dtype=bool)
    cm[:, off] = spill.reshape(n, -1)
    cm[:, np.arange(c), np.arange(c)] = right
    return cm


def make_run_dir(root, *, variants=VARIANTS, n_seeds=10, n_images=30, n_epochs=6, n_rounds=20, shift=None,
                 confusion=True, epochs=True, latency=True, study=True, claims=CLAIMS, seed=0, n_launches=3,
                 launch_sd=0.02, image_sd=0.0, claim_setting=True) -> Path:
    """Write a complete run directory under ``root`` and return it.

    ``n_rounds`` latency rounds per launch, ``n_launches`` launches (0: an old table without the
    ``launch`` and ``mode`` columns) with a per-launch speed shift of sd ``launch_sd``; ``image_sd``:
    sd of a per-(variant, image) accuracy shift shared by all seeds (the test-set part of the effect);
    ``claim_setting``: study.json declares the latency setting claims use (False: an older run dir).
    """
    root = Path(root)
    (root / "confusion").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shift = {**ACCURACY_SHIFT, **(shift or {})}
    n_cls = len(CLASSES)
    truth = rng.integers(200, 3000, size=(n_images, n_cls)) * (rng.random((n_images, n_cls)) < 0.8)
    class_base = np.linspace(0.62, 0.82, n_cls)
    seed_offset = {s: rng.normal(0, 0.012) for s in range(n_seeds)}
    image_shift = {v: rng.normal(0, image_sd, n_images)[:, None] if image_sd else 0.0 for v in variants}
    rows, epoch_rows = [], []
    for variant in variants:
        for s in range(n_seeds):
            accuracy = np.clip(class_base + shift.get(variant, 0.0) + seed_offset[s] + rng.normal(0, 0.004)
                               + image_shift[variant], 0, 1)
            cm = simulate_confusion(truth, np.broadcast_to(accuracy, truth.shape), rng)
            accuracy = np.mean(np.broadcast_to(accuracy, truth.shape), axis=0)
            run_id = f"{variant}-seed{s}"
            if confusion:
                np.savez(root / "confusion" / f"{run_id}.npz", per_image=cm,
                         names=np.array([f"img{i:04d}" for i in range(n_images)]), class_names=np.array(CLASSES))
            miou, iou = miou_of(cm.sum(0))
            total = cm.sum(0)
            rows.append({
                "study": "synthetic", "variant": variant, "decoder": variant, "phase": "seed", "run_id": run_id,
                "trial": "", "seed": s, "split": "test", "miou": miou,
                "pixel_acc": np.trace(total) / total.sum(), "mean_acc": float(np.mean(accuracy)),
                "fwiou": miou, **{f"iou_{c}": v for c, v in zip(CLASSES, iou)},
                "params_m": {"all_mlp": 3.7, "progressive": 3.9, "skip_fused": 4.3, "unet_r34": 24.4}.get(variant, 5),
                "gflops": {"all_mlp": 2.1, "progressive": 2.6, "skip_fused": 3.4, "unet_r34": 11.0}.get(variant, 3),
                "train_seconds": 140 + 10 * rng.random(), "epochs": n_epochs, "pretrained": "nvidia/mit-b0",
                "image_size": "256x256", "config": json.dumps({"lr": 1e-4}), "status": "ok",
                "torch": "2.14.1", "device": "cpu", "started_at": "2026-11-22T00:00:00",
                "finished_at": "2026-11-22T00:02:20",
            })
            for e in range(1, n_epochs + 1):
                epoch_rows.append({"run_id": run_id, "epoch": e, "train_loss": 1.5 / e + rng.normal(0, 0.02),
                                   "val_miou": miou * (1 - np.exp(-e / 2)) + rng.normal(0, 0.005), "seconds": 9.5})
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    if epochs:
        pd.DataFrame(epoch_rows).to_csv(root / "epochs.csv", index=False)
    if latency:
        lat = []
        for launch in range(max(n_launches, 1)):
            launch_shift = {v: rng.normal(0, launch_sd) for v in variants}
            for r in range(n_rounds):
                for v in rng.permutation(list(variants)):
                    row = {"variant": v, "launch": launch, "round": r, "batch": 1, "height": 256, "width": 256,
                           "dtype": "fp32", "mode": "eager", "threads": 1, "device": "cpu",
                           "ms_per_image": MS_PER_IMAGE.get(v, 15.0) * np.exp(launch_shift[v]
                                                                               + 0.03 * rng.standard_normal())}
                    if not n_launches:
                        del row["launch"], row["mode"]
                    lat.append(row)
        pd.DataFrame(lat).to_csv(root / "latency.csv", index=False)
    if study:
        (root / "study.json").write_text(json.dumps({
            "name": "synthetic", "baseline": variants[0], "seeds": list(range(n_seeds)),
            "variants": {v: {"decoder": v} for v in variants}, "claims": claims,
            **({"latency": {"rounds": n_rounds, "launches": n_launches, "dtype": "fp32", "mode": "eager",
                            "claim_setting": {"batch": 1, "height": 256, "width": 256, "dtype": "fp32",
                                              "mode": "eager"}}} if claim_setting else {}),
            "settings": {"image_size": [256, 256], "pretrained": "nvidia/mit-b0", "epochs": n_epochs,
                         "transformers": "4.57.0"},
        }, indent=2))
    return root


def add_tune_phase(root, variants=("all_mlp", "skip_fused"), n_trials=8, seed=0) -> Path:
    """An Optuna SQLite storage (study.db) with one tune study per variant."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{Path(root).resolve() / 'study.db'}"
    for variant in variants:
        study = optuna.create_study(study_name=f"synthetic/{variant}/tune", storage=storage, direction="maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=seed))

        def objective(trial):
            lr = trial.suggest_float("lr", 1e-5, 1e-3, log=True)
            embed = trial.suggest_categorical("embed_dim", [128, 256])
            return 0.5 + 0.05 * np.log10(lr / 1e-5) / 2 + (0.01 if embed == 256 else 0.0)

        study.optimize(objective, n_trials=n_trials)
    return Path(root)


if __name__ == "__main__":  # the timing the issue asks for
    import tempfile
    import time

    from analysis import analyze

    with tempfile.TemporaryDirectory() as tmp:
        run = make_run_dir(Path(tmp) / "bench", n_images=233, image_sd=0.03)
        for write in (False, True):
            start, cpu = time.perf_counter(), time.process_time()
            analyze(run, n_boot=10000, write=write)
            print(f"analyze{' + report' if write else ' (verdicts only)'}: 4 variants x 10 seeds x 233 test images "
                  f"(seeds x images), n_boot=10000: {time.perf_counter() - start:.2f} s wall, "
                  f"{time.process_time() - cpu:.2f} s CPU")
