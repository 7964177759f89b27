"""tests/fake_trainer.py with a planted paired effect, for --until-settled and budget tests.

mIoU = 0.5 * exp(seed offset + effect[decoder] + sd * noise), where the seed offset is shared by
every variant (pairing by seed removes it) and the noise is drawn from (decoder, seed).
$ABLATE_FAKE_EFFECTS = "skip_fused=0.025,progressive=0" (log ratios vs all_mlp),
$ABLATE_FAKE_SD = sd of the paired noise, $ABLATE_FAKE_EPOCH_EFFECT = extra log effect per epoch
beyond 4 (so the effect depends on the training budget).
"""

from __future__ import annotations

import math
import os

import fake_trainer
import numpy as np
from fake_trainer import measure_study_latency  # noqa: F401


def _effects() -> dict[str, float]:
    out = {}
    for item in filter(None, os.environ.get("ABLATE_FAKE_EFFECTS", "").split(",")):
        name, value = item.split("=")
        out[name.strip()] = float(value)
    return out


def planted_miou(decoder: str, seed: int, epochs: int) -> float:
    offset = 0.05 * np.random.default_rng([seed, 7]).standard_normal()
    noise = np.random.default_rng([seed, sum(map(ord, decoder))]).standard_normal()
    effect = _effects().get(decoder, 0.0)
    if decoder != "all_mlp":
        effect += float(os.environ.get("ABLATE_FAKE_EPOCH_EFFECT", "0")) * (epochs - 4)
    sd = float(os.environ.get("ABLATE_FAKE_SD", "0.01")) if decoder != "all_mlp" else 0.0
    return 0.5 * math.exp(offset + effect + sd * noise)


def train_run(cfg, *, out_dir, run_id, **kwargs):
    row = fake_trainer.train_run(cfg, out_dir=out_dir, run_id=run_id, **kwargs)
    if row.get("status") == "ok":
        miou = planted_miou(cfg.decoder, cfg.seed, cfg.epochs)
        row.update(miou=miou, mean_acc=miou, fwiou=miou, iou_Sky=miou, iou_Road=miou, pixel_acc=miou + 0.3)
        # per-image confusions with this mIoU (2 classes, symmetric errors: IoU = t / (t + 2e)), as the
        # analysis computes mIoU from them when they exist
        from pathlib import Path

        t = 1_000_000
        e = round(t * (1 / miou - 1) / 2)
        cm = np.array([[t, e], [e, t]], dtype=np.int64)
        np.savez_compressed(Path(out_dir) / "confusion" / f"{run_id}.npz", per_image=np.stack([cm] * 3),
                            names=np.array(["a", "b", "c"]), class_names=np.array(["Sky", "Road"]))
    return row
