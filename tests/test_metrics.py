"""Confusion-matrix metrics: a worked 3-class example, an independent computation, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ablate.engine.metrics import batch_confusion, confusion_matrix, metrics_from_confusion

# A 3-class example worked by hand (255 = ignore):
#   truth 0 0 0 1 1 2 2 2 2 255
#   pred  0 0 1 1 2 2 2 2 0 1
GT = [0, 0, 0, 1, 1, 2, 2, 2, 2, 255]
PRED = [0, 0, 1, 1, 2, 2, 2, 2, 0, 1]
CM = [[2, 1, 0],
      [0, 1, 1],
      [1, 0, 3]]


def test_confusion_of_worked_example():
    cm = confusion_matrix(torch.tensor(PRED), torch.tensor(GT), 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, CM)


def test_metrics_of_worked_example():
    m = metrics_from_confusion(CM, ["a", "b", "c"])
    # IoU = tp / (gt + pred - tp): a 2/4, b 1/3, c 3/5
    assert m["iou"] == pytest.approx({"a": 1 / 2, "b": 1 / 3, "c": 3 / 5})
    assert m["miou"] == pytest.approx(43 / 90)
    assert m["pixel_acc"] == pytest.approx(6 / 9)
    assert m["mean_acc"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert m["fwiou"] == pytest.approx(3 / 9 * 1 / 2 + 2 / 9 * 1 / 3 + 4 / 9 * 3 / 5)  # = 137/270
    # Dice = 2 tp / (gt + pred): a 4/6, b 2/4, c 6/8
    assert m["dice"] == pytest.approx({"a": 4 / 6, "b": 2 / 4, "c": 6 / 8})
    assert m["mean_dice"] == pytest.approx((4 / 6 + 2 / 4 + 6 / 8) / 3)


def test_against_independent_computation():
    rng = np.random.default_rng(0)
    c = 5
    gt = rng.integers(0, c, size=(4, 17, 23))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = np.where(rng.random(gt.shape) < 0.6, np.clip(gt, 0, c - 1), rng.integers(0, c, size=gt.shape))
    valid = gt != 255

    hist, _, _ = np.histogram2d(gt[valid], pred[valid], bins=c, range=[[0, c], [0, c]])
    cm = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(gt), c)
    np.testing.assert_array_equal(cm, hist.astype(np.int64))

    m = metrics_from_confusion(cm)
    for k in range(c):  # loop-based IoU straight from pixels
        inter = np.sum((pred == k) & (gt == k) & valid)
        union = np.sum(((pred == k) | (gt == k)) & valid)
        assert m["iou"][str(k)] == pytest.approx(inter / union)
    assert m["pixel_acc"] == pytest.approx(np.mean(pred[valid] == gt[valid]))


def test_ignore_index_pixels_do_not_count():
    gt = torch.tensor([[0, 1], [255, 255]])
    assert confusion_matrix(torch.tensor([[0, 1], [1, 0]]), gt, 2).sum() == 2
    assert confusion_matrix(torch.tensor([[0, 1], [0, 0]]), gt, 2).tolist() == [[1, 0], [0, 1]]


def test_class_absent_from_truth_and_prediction_is_left_out():
    cm = np.zeros((4, 4), np.int64)
    cm[0, 0], cm[1, 1], cm[1, 2] = 5, 3, 1  # class 2 only predicted, class 3 nowhere
    m = metrics_from_confusion(cm)
    assert math.isnan(m["iou"]["3"]) and math.isnan(m["dice"]["3"])
    assert m["iou"]["2"] == 0.0  # a false positive class counts, as zero
    assert m["miou"] == pytest.approx((1 + 3 / 4 + 0) / 3)
    assert m["mean_acc"] == pytest.approx((1 + 3 / 4) / 2)  # over classes present in truth


def test_empty_confusion_gives_nan_not_error():
    m = metrics_from_confusion(np.zeros((3, 3)))
    assert all(math.isnan(m[k]) for k in ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice"))


def test_batch_confusion_per_image_matches_single_and_sums():
    rng = np.random.default_rng(1)
    gt = torch.from_numpy(rng.integers(0, 3, size=(3, 8, 9)))
    gt[0, :2] = 255
    pred = torch.from_numpy(rng.integers(0, 3, size=(3, 8, 9)))
    per_image = batch_confusion(pred, gt, 3)
    assert per_image.shape == (3, 3, 3) and per_image.dtype == torch.int64
    for i in range(3):
        np.testing.assert_array_equal(per_image[i].numpy(), confusion_matrix(pred[i], gt[i], 3))
    np.testing.assert_array_equal(per_image.sum(0).numpy(), confusion_matrix(pred, gt, 3))
