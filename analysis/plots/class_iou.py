"""Per-class test IoU (%) per variant, mean over seeds, as an annotated heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.plots.style import new_axes, style


def plot_class_iou(class_iou: pd.DataFrame, *, ax=None):
    """``class_iou``: variants (rows) × classes (columns), IoU as fractions."""
    values = 100 * class_iou.to_numpy(dtype=float)
    # colour over the observed range: differences of a few points are the point of the figure
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    low, high = (low - 1, high + 1) if high - low < 2 else (low, high)
    with style():
        ax = new_axes(ax, (1.2 + 0.8 * class_iou.shape[1], 1.5 + 0.55 * class_iou.shape[0]))
        sns.heatmap(100 * class_iou.astype(float), annot=True, fmt=".0f", cmap="viridis", vmin=low, vmax=high,
                    ax=ax, cbar_kws={"label": "IoU (%)"}, linewidths=0.5, annot_kws={"fontsize": 9})
        ax.set_xlabel("class")
        ax.set_ylabel("variant")
        ax.set_title("Per-class test IoU (%), mean over seeds")
        ax.tick_params(axis="x", rotation=40)
        ax.tick_params(axis="y", rotation=0)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    return ax


PLACEMENT = "figures"
CAPTION = "Per-class test IoU, mean over seeds."


def class_tables(summaries: dict, baseline: str | None):
    """Variant × class IoU means, and the change vs the baseline (None without one)."""
    iou = pd.DataFrame({v: s["class_iou"] for v, s in summaries.items() if s.get("class_iou")}).T.astype(float)
    if iou.empty or baseline not in iou.index:
        return iou, None
    return iou, (iou.drop(index=baseline) - iou.loc[baseline]).astype(float)


def figures(inputs) -> list:
    from analysis.plots.figure import Figure

    class_iou, _ = class_tables(inputs.verdicts["variants"], inputs.baseline)
    return [Figure("class_iou", lambda ax: plot_class_iou(class_iou, ax=ax), CAPTION, PLACEMENT,
                   None if class_iou.notna().any().any() else "no iou_<class> columns with values")]
