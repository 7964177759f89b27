"""train_run end to end on synthetic data, `ablate train`, latency rows, a real-CamVid smoke run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from ablate.engine import TrainConfig, measure_latency, train_run

ROW_COLUMNS = ("study variant decoder phase run_id trial seed split miou pixel_acc mean_acc fwiou mean_dice "
               "params_m gflops train_seconds epochs pretrained image_size config status error torch transformers "
               "device started_at finished_at best_val_epoch best_val_miou miou_at_best_val history").split()


def small_cfg(**kw) -> TrainConfig:
    base = dict(decoder="all_mlp", image_size=(32, 32), epochs=1, batch_size=4, device="cpu",
                eval_batch_size=6, decoder_cfg={"embed_dim": 32})
    return TrainConfig(**{**base, **kw})


def test_train_run_writes_files_and_a_full_row(synthetic_root, tmp_path):
    row = train_run(small_cfg(), data_root=synthetic_root, out_dir=tmp_path, run_id="r0", eval_split="test",
                    progress=False, study="s", variant="base", phase="seed", trial=3)
    assert row["status"] == "ok", row["error"]
    assert set(ROW_COLUMNS) <= set(row)
    class_names = [k[len("iou_"):] for k in row if k.startswith("iou_")]
    assert len(class_names) >= 2
    assert (row["study"], row["variant"], row["phase"], row["trial"], row["split"]) == ("s", "base", "seed", 3, "test")
    assert 0 <= row["miou"] <= 1 and row["params_m"] > 0 and row["gflops"] > 0 and row["epochs"] == 1
    assert row["best_val_epoch"] == 1 and not math.isnan(row["miou_at_best_val"])
    assert row["image_size"] == "32x32" and row["pretrained"] == "none"
    config = json.loads(row["config"])
    assert config["amp_used"] in ("bf16", "off") and config["threads"] >= 1 and config["versions"]["torch"]
    assert [set(h) for h in row["history"]] == [{"epoch", "train_loss", "val_miou", "seconds"}]

    with np.load(tmp_path / "confusion" / "r0.npz") as npz:
        per_image = npz["per_image"]
        assert per_image.ndim == 3 and per_image.shape[1:] == (len(class_names),) * 2
        assert len(npz["names"]) == per_image.shape[0] and list(npz["class_names"]) == class_names
    checkpoint = torch.load(tmp_path / "checkpoints" / "r0.pt", weights_only=False)
    assert checkpoint["config"]["decoder"] == "all_mlp" and checkpoint["state_dict"]


def run_cli(args, capsys):
    from ablate.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", *args])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_ablate_train_missing_data_is_a_one_line_error(tmp_path, capsys):
    code, _, err = run_cli(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err.startswith("error: ") and "--data" in err and err.count("\n") == 1


def test_ablate_train_writes_result_json(synthetic_root, tmp_path, capsys):
    out = tmp_path / "try"
    code, stdout, _ = run_cli(["--data", str(synthetic_root), "--epochs", "1", "--image-size", "32x32",
                               "--device", "cpu", "--set", "embed_dim=32", "--pretrained", "none", "--out", str(out),
                               "--quiet"], capsys)
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    for key in ("miou", "iou", "dice", "pixel_acc", "mean_acc", "fwiou", "mean_dice", "params_m", "gflops",
                "train_seconds", "config", "torch", "transformers", "device", "pretrained", "history"):
        assert key in result, key
    assert result["config"]["decoder_cfg"] == {"embed_dim": 32}
    assert "mIoU" in stdout and (out / "checkpoints" / "train.pt").exists()


def test_ablate_train_diverging_run_exits_1_with_the_message(synthetic_root, tmp_path, capsys):
    code, _, err = run_cli(["--data", str(synthetic_root), "--epochs", "1", "--image-size", "32", "--lr", "1e30",
                            "--device", "cpu", "--set", "embed_dim=32", "--pretrained", "none", "--out", str(tmp_path),
                            "--quiet"], capsys)
    assert code == 1
    assert "run failed: loss became" in err and "--lr" in err
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "failed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_ablate_train_cuda_without_cuda_is_a_config_error(synthetic_root, tmp_path, capsys):
    code, _, err = run_cli(["--data", str(synthetic_root), "--device", "cuda", "--out", str(tmp_path)], capsys)
    assert code == 2 and "CUDA is not available" in err


def test_measure_latency_interleaves_rounds_and_restores_threads():
    models = {"a": nn.Conv2d(3, 4, 3, padding=1), "b": nn.Conv2d(3, 4, 1)}
    threads = torch.get_num_threads()
    rows = measure_latency(models, batch=2, image_size=(8, 12), rounds=3, warmup=1, threads=1, dtype="bf16")
    assert sorted(r["variant"] for r in rows) == ["a"] * 3 + ["b"] * 3  # order within a round is random
    assert [r["round"] for r in rows] == [0, 0, 1, 1, 2, 2]
    assert all(r["ms_per_image"] > 0 and r["threads"] == 1 and (r["height"], r["width"]) == (8, 12) for r in rows)
    assert torch.get_num_threads() == threads


@pytest.mark.camvid
def test_all_mlp_smoke_on_real_camvid(camvid_root, tmp_path):
    cfg = TrainConfig(decoder="all_mlp", image_size=(64, 64), epochs=1, max_steps=3, device="cpu")
    row = train_run(cfg, data_root=camvid_root, out_dir=tmp_path, run_id="smoke", progress=False)
    assert row["status"] == "ok", row["error"]
    assert row["history"][0]["train_loss"] > 0 and 0 <= row["miou"] <= 1
    assert len([k for k in row if k.startswith("iou_")]) == 11


def test_fit_with_a_real_decoder_is_deterministic(synthetic_root):
    from ablate.data import load_split
    from ablate.engine import evaluate, fit
    from ablate.models import build_model

    train = load_split(synthetic_root, "train", size=(32, 32))
    val = load_split(synthetic_root, "val", size=(32, 32))

    def once():
        model = build_model("skip_fused", num_classes=len(train.class_names), seed=0)
        fitted = fit(model, train, None, small_cfg(decoder="skip_fused", max_steps=2, decoder_cfg={}), progress=False)
        return [h["train_loss"] for h in fitted.history], evaluate(model, val, amp=fitted.amp).per_image

    (loss_a, cm_a), (loss_b, cm_b) = once(), once()
    assert loss_a == loss_b
    np.testing.assert_array_equal(cm_a, cm_b)


def test_ablate_train_without_reachable_weights_is_a_one_line_error(synthetic_root, tmp_path):
    """Pretrained weights are the default; offline, the error names --pretrained none (no random init by stealth)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "ablate", "train", "--data", str(synthetic_root), "--epochs", "1",
                           "--image-size", "32", "--out", str(tmp_path), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and "--pretrained none" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "result.json").exists()
