"""Confusion matrices and the segmentation metrics derived from them.

Rows are ground truth, columns are predictions. Every metric is computed from
a (summed) confusion matrix, so a dataset's mIoU is a ratio of sums over all
pixels, not a mean of per-image scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ablate.data.classes import IGNORE_INDEX


def confusion_matrix(pred, target, num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """int64 [C, C] confusion of one prediction/label pair (any shape, same shape)."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    return batch_confusion(pred.reshape(1, -1), target.reshape(1, -1), num_classes, ignore_index)[0].cpu().numpy()


def batch_confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                    ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Per-image confusion matrices int64 [B, C, C] with one bincount for the whole batch.

    Pixels whose label is ``ignore_index`` (or any value outside 0..C-1) are dropped.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(target.shape)}")
    b, c = pred.shape[0], num_classes
    pred = pred.reshape(b, -1).long()
    target = target.reshape(b, -1).long()
    valid = (target >= 0) & (target < c) & (target != ignore_index)
    image = torch.arange(b, device=pred.device).unsqueeze(1)
    # argmax output is always in range; the clamp keeps hand-made input from
    # spilling into a neighbouring image's matrix
    index = (image * c + target) * c + pred.clamp(0, c - 1)
    counts = torch.bincount(index[valid], minlength=b * c * c)
    return counts.reshape(b, c, c)


def metrics_from_confusion(cm, class_names: Sequence[str] | None = None) -> dict:
    """mIoU, pixel acc, mean acc, fwIoU, Dice (per class and mean) from a [C, C] confusion.

    A class absent from both truth and prediction has IoU/Dice NaN and is left out
    of the means; mean accuracy averages over classes present in the truth.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square [C, C], got shape {cm.shape}")
    n = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for a {n}-class confusion matrix")
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pr = cm.sum(axis=0)
    union = gt + pr - tp
    total = cm.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        dice = np.where(gt + pr > 0, 2 * tp / (gt + pr), np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    present = gt > 0
    return {
        "miou": _nanmean(iou),
        "pixel_acc": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_acc": _nanmean(acc),
        # frequency weights over labelled pixels; a class seen only in predictions weighs 0
        "fwiou": float((gt[present] / total * iou[present]).sum()) if total > 0 else float("nan"),
        "mean_dice": _nanmean(dice),
        "iou": {name: float(v) for name, v in zip(names, iou)},
        "dice": {name: float(v) for name, v in zip(names, dice)},
        "acc": {name: float(v) for name, v in zip(names, acc)},
    }


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")
