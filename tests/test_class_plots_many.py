"""The class plots stay readable with ADE20K's 150 classes: the best and the worst, and how many are left out."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import plots as P  # noqa: E402
from analysis.plots.class_iou import MAX_CLASSES, extreme_classes  # noqa: E402


def _table(n_classes: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = [f"class {i}" for i in range(n_classes)]
    return pd.DataFrame(rng.uniform(0, 1, (3, n_classes)), index=["all_mlp", "progressive", "skip_fused"],
                        columns=names)


def test_extreme_classes_keeps_all_few_and_the_ends_of_many():
    few = pd.Series([0.3, 0.9, 0.1], index=["a", "b", "c"])
    assert extreme_classes(few) == (["a", "b", "c"], 0)
    many = pd.Series(np.arange(150) / 150, index=[f"c{i}" for i in range(150)])
    many["c7"] = np.nan  # a class never present in the test set: neither best nor worst
    shown, left_out = extreme_classes(many)
    half = MAX_CLASSES // 2
    assert shown == [f"c{i}" for i in range(149, 149 - half, -1)] + [f"c{i}" for i in range(half, -1, -1) if i != 7]
    assert left_out == 150 - MAX_CLASSES


def test_class_plots_with_150_classes_show_the_best_and_worst():
    table = _table(150)
    ax = P.plot_class_iou(table)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    means = table.mean(axis=0).sort_values(ascending=False)
    assert len(labels) == MAX_CLASSES and labels[0] == means.index[0] and labels[-1] == means.index[-1]
    assert "126 more not shown" in ax.get_xlabel()
    plt.close("all")
    delta = table.iloc[1:] - table.iloc[0]
    ax = P.plot_class_delta(delta, baseline="all_mlp")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    change = delta.mean(axis=0).sort_values(ascending=False)
    assert labels[0] == change.index[0] and labels[-1] == change.index[-1]
    assert "most improved and most degraded (126 more" in ax.get_xlabel()
    plt.close("all")
    assert len(P.plot_class_iou(_table(19)).get_xticklabels()) == 19  # Cityscapes: every class
    plt.close("all")
    absent = _table(19)
    absent[["class 3", "class 9"]] = np.nan  # no pixel of theirs in the split: no IoU
    ax = P.plot_class_iou(absent)
    assert len(ax.get_xticklabels()) == 17 and "2 without a value (absent from the split) not shown" in ax.get_xlabel()
    plt.close("all")
