"""fit / evaluate on hand-made data and a tiny conv model: determinism, NaN, pruning, max_steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from ablate.engine import Pruned, TrainConfig, evaluate, fit
from ablate.errors import ConfigError

CLASSES = ("dark", "mid", "bright")


@dataclass
class TinyData:  # quacks like ablate.data.SegData
    images: torch.Tensor
    labels: torch.Tensor
    names: list
    class_names: tuple
    split: str

    def __len__(self):
        return len(self.images)


def tiny_data(n=6, size=16, seed=0, split="train") -> TinyData:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = (images[:, 0].long() * 3 // 256).to(torch.uint8)  # class from the red channel: learnable
    labels[:, :2] = 255  # a band of void pixels
    return TinyData(images, labels, [f"{split}{i}" for i in range(n)], CLASSES, split)


class TinyNet(nn.Module):
    def __init__(self, classes=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.1), nn.Conv2d(8, classes, 1))

    def forward(self, x):
        return self.net(x)


class NaNNet(TinyNet):
    def forward(self, x):
        return super().forward(x) * float("nan")


def cfg(**kw) -> TrainConfig:
    base = dict(batch_size=2, epochs=2, lr=1e-2, device="cpu", amp="off", eval_batch_size=4, log_every=2)
    return TrainConfig(**{**base, **kw})


def test_fit_learns_and_records_history():
    model = TinyNet()
    result = fit(model, tiny_data(), tiny_data(4, seed=1, split="val"), cfg(epochs=3), progress=False)
    assert result.status == "ok" and result.error is None
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert set(result.history[0]) == {"epoch", "train_loss", "val_miou", "seconds"}
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.epochs == 3 and result.steps == 9 and result.train_seconds > 0
    assert result.best_epoch in (1, 2, 3) and result.best_state is not None
    assert result.best_val_miou == max(row["val_miou"] for row in result.history)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_fit_is_deterministic_for_a_seed(amp):
    def once(seed):
        model = TinyNet(seed=seed)
        fitted = fit(model, tiny_data(), tiny_data(4, seed=1, split="val"), cfg(seed=seed, amp=amp), progress=False)
        ev = evaluate(model, tiny_data(4, seed=2, split="test"), batch_size=4, amp=fitted.amp)
        return [(r["train_loss"], r["val_miou"]) for r in fitted.history], ev.metrics, fitted.amp

    first, second, other = once(0), once(0), once(1)
    assert first[2] == amp
    assert first[0] == second[0] and first[1] == second[1]
    assert first[0] != other[0]


def test_nan_loss_fails_the_run_without_raising():
    result = fit(NaNNet(), tiny_data(), None, cfg(), progress=False)
    assert result.status == "failed"
    assert "epoch 1, step 1/3" in result.error and "--lr" in result.error and "--amp off" in result.error


def test_huge_lr_diverges_to_failed():
    result = fit(TinyNet(), tiny_data(), None, cfg(lr=1e30, epochs=3), progress=False)
    assert result.status == "failed" and "loss became" in result.error


def test_pruned_callback_stops_the_run():
    seen = []

    def on_epoch(epoch, metrics):
        seen.append((epoch, metrics["miou"], metrics["train_loss"]))
        raise Pruned("trial pruned at epoch 1")

    result = fit(TinyNet(), tiny_data(), tiny_data(4, split="val"), cfg(epochs=5), on_epoch=on_epoch, progress=False)
    assert result.status == "pruned" and result.epochs == 1 and len(seen) == 1
    assert result.error == "trial pruned at epoch 1"


def test_max_steps_stops_mid_epoch():
    result = fit(TinyNet(), tiny_data(), None, cfg(epochs=5, max_steps=4), progress=False)
    assert result.status == "ok" and result.steps == 4 and result.epochs == 2
    assert math.isnan(result.history[0]["val_miou"])


def test_evaluate_per_image_confusions_sum_to_total():
    data = tiny_data(5, split="val")
    ev = evaluate(TinyNet(), data, batch_size=2)
    assert ev.per_image.shape == (5, 3, 3) and ev.per_image.dtype == np.int64
    np.testing.assert_array_equal(ev.per_image.sum(0), ev.confusion)
    assert ev.confusion.sum() == int((data.labels != 255).sum())
    assert ev.names == data.names
    assert set(ev.metrics["iou"]) == set(CLASSES)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ConfigError, match="image size"):
        TrainConfig(image_size="big")
    assert TrainConfig(image_size="360x480").image_size == (360, 480)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            fit(TinyNet(), tiny_data(), None, cfg(device="cuda"), progress=False)


def test_amp_resolution_and_config_round_trip():
    from ablate.engine.config import cpu_has_native_bf16, resolve_amp

    assert resolve_amp("off", "cpu") == "off"
    assert resolve_amp("bf16", "cpu") == "bf16"
    assert resolve_amp("auto", "cpu") == ("bf16" if cpu_has_native_bf16() else "off")
    with pytest.raises(ConfigError, match="fp16"):
        resolve_amp("fp16", "cpu")
    c = TrainConfig(image_size=(64, 96), decoder_cfg={"embed_dim": 32})
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="unknown training setting"):
        TrainConfig.from_dict({"epoch": 3})
