"""Real CamVid (SegNet layout) through $ABLATE_CAMVID; skipped when unset."""

from __future__ import annotations

import pytest
import torch

from ablate.data import IGNORE_INDEX, find_splits, load_split
from ablate.data.layouts.camvid import CAMVID_CLASSES

# Train pixel shares from ../shared/camvid/README.md (void last).
README_SHARES = [0.169, 0.233, 0.010, 0.317, 0.045, 0.097, 0.012, 0.011, 0.059, 0.006, 0.003, 0.040]

pytestmark = pytest.mark.camvid


def test_camvid_val_loads_at_64(camvid_root, tmp_path):
    assert {"train", "val"} <= set(find_splits(camvid_root))
    val = load_split(camvid_root, "val", size=(64, 64), cache_dir=tmp_path)
    assert len(val) == 101 and val.class_names == CAMVID_CLASSES and len(val.class_names) == 11
    assert val.images.shape == (101, 3, 64, 64) and val.labels.shape == (101, 64, 64)
    values = set(val.labels.unique().tolist())
    assert values <= set(range(11)) | {IGNORE_INDEX} and len(values - {IGNORE_INDEX}) == 11


def test_camvid_train_pixel_shares_match_readme(camvid_root, tmp_path):
    train = load_split(camvid_root, "train", size=(64, 64), cache_dir=tmp_path)
    assert len(train) == 367
    counts = torch.bincount(train.labels.flatten().long(), minlength=256).double()
    shares = torch.cat([counts[:11], counts[IGNORE_INDEX:]]) / counts.sum()
    assert shares.tolist() == pytest.approx(README_SHARES, abs=0.01)  # nearest resizing keeps shares
