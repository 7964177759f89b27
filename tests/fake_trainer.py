"""A fast stand-in for ablate.engine.train_run / measure_study_latency, for sweep tests.

Selected with ABLATE_TRAINER=fake_trainer (tests/ on PYTHONPATH). Each epoch sleeps
$ABLATE_FAKE_EPOCH_SECONDS so a test can kill a worker mid-run. mIoU is a
deterministic function of (decoder, seed, lr); a seed listed in $ABLATE_FAKE_FAIL_SEEDS fails;
$ABLATE_FAKE_USER_ERROR makes every run raise that ConfigError (a user error, e.g. missing weights);
$ABLATE_FAKE_ERROR makes every run raise that RuntimeError (a systematic bug);
$ABLATE_FAKE_LATENCY_ERROR makes the latency phase raise that RuntimeError. Keyword arguments
it is given are kept in CALLS (in-process tests inspect them). $ABLATE_FAKE_CHECK_DECODER=1 makes every run
check that its decoder is registered in this process (a study's own decoder must reach every worker), and
$ABLATE_FAKE_REAL_LATENCY=1 measures latency for real (fresh launch processes build the models).
"""

from __future__ import annotations

import hashlib
import os
import time


def _score(*parts) -> float:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return 0.4 + 0.2 * digest[0] / 255


CALLS: list[dict] = []


def train_run(cfg, *, data_root, out_dir, run_id, eval_split="val", on_epoch=None, progress=True, **kw):
    CALLS.append({"run_id": run_id, "progress": progress, **kw})
    if os.environ.get("ABLATE_FAKE_ERROR"):
        raise RuntimeError(os.environ["ABLATE_FAKE_ERROR"])
    if os.environ.get("ABLATE_FAKE_USER_ERROR"):
        from ablate.errors import ConfigError

        raise ConfigError(os.environ["ABLATE_FAKE_USER_ERROR"])
    if os.environ.get("ABLATE_FAKE_CHECK_DECODER"):
        from ablate.models import decoder_defaults

        decoder_defaults(cfg.decoder)  # ConfigError when this worker cannot see the decoder
    if str(cfg.seed) in os.environ.get("ABLATE_FAKE_FAIL_SEEDS", "").split(","):
        raise RuntimeError(f"fake failure for seed {cfg.seed}")
    pause = float(os.environ.get("ABLATE_FAKE_EPOCH_SECONDS", "0"))
    miou = _score(cfg.decoder, cfg.seed, cfg.lr)
    history, status, error = [], "ok", None
    for epoch in range(1, cfg.epochs + 1):
        time.sleep(pause)
        history.append({"epoch": epoch, "train_loss": 1.0 / epoch, "val_miou": miou * epoch / cfg.epochs,
                        "seconds": pause})
        if on_epoch is not None:
            try:
                on_epoch(epoch, {"miou": miou * epoch / cfg.epochs})
            except Exception as exc:  # engine.Pruned
                status, error = "pruned", str(exc)
                break
    if status == "ok":  # per-image confusions, as the real trainer writes them
        from pathlib import Path

        import numpy as np

        (Path(out_dir) / "confusion").mkdir(parents=True, exist_ok=True)
        np.savez_compressed(Path(out_dir) / "confusion" / f"{run_id}.npz", per_image=np.eye(2, dtype=np.int64)[None])
    return {"split": eval_split, "seed": cfg.seed, "decoder": cfg.decoder, "miou": miou, "pixel_acc": miou + 0.3,
            "mean_acc": miou, "fwiou": miou, "iou_Sky": miou, "iou_Road": miou, "params_m": 3.7, "gflops": 1.0,
            "train_seconds": pause * cfg.epochs, "epochs": len(history), "pretrained": cfg.pretrained,
            "image_size": f"{cfg.image_size[0]}x{cfg.image_size[1]}", "status": status, "error": error,
            "torch": "fake", "device": "cpu", "epochs_history": history}


def train_runs_packed(cfgs, *, data_root, out_dir, run_ids, eval_split="val", on_epoch=None, progress=True,
                      trials=None, **kw):
    """The packed path: one row per seed, as train_run gives it, with packed_seeds = K in its config;
    the pack sleeps one epoch's pause per epoch (the seeds train together)."""
    import json

    CALLS.append({"run_ids": list(run_ids), "packed": len(cfgs), **kw})
    pause = float(os.environ.get("ABLATE_FAKE_EPOCH_SECONDS", "0"))
    time.sleep(pause * max(c.epochs for c in cfgs))
    os.environ["ABLATE_FAKE_EPOCH_SECONDS"] = "0"  # the pack's time is spent once, not per seed
    try:
        rows = [train_run(c, data_root=data_root, out_dir=out_dir, run_id=r, eval_split=eval_split, progress=progress,
                          **kw) for c, r in zip(cfgs, run_ids)]
    finally:
        os.environ["ABLATE_FAKE_EPOCH_SECONDS"] = str(pause)
    for row, cfg in zip(rows, cfgs):
        row["config"] = json.dumps({**cfg.to_dict(), "packed_seeds": len(cfgs)}, default=str)
    return rows


def measure_study_latency(study, *, configs=None, device="auto", **kw):
    if os.environ.get("ABLATE_FAKE_LATENCY_ERROR"):  # e.g. a decoder the latency launches cannot build
        raise RuntimeError(os.environ["ABLATE_FAKE_LATENCY_ERROR"])
    if os.environ.get("ABLATE_FAKE_REAL_LATENCY"):
        from ablate.engine.latency import measure_study_latency as real

        return real(study, configs=configs, device="cpu", **kw)
    lat = study.latency_settings()
    rows = []
    for r in range(lat["rounds"]):
        for i, variant in enumerate(study.variants):
            rows.append({"variant": variant, "round": r, "batch": 1, "height": study.image_size[0],
                         "width": study.image_size[1], "dtype": "fp32", "threads": 1, "device": "cpu",
                         "ms_per_image": 10.0 + i + 0.1 * (r % 3)})
    return rows
