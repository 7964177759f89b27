"""Per-class test IoU (%) per variant, mean over seeds, as an annotated heatmap.

With many classes (ADE20K's 150) a bar or cell per class is unreadable: the figure then shows the
``MAX_CLASSES // 2`` best and worst classes and says how many it leaves out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.plots.style import new_axes, style

MAX_CLASSES = 24  # more classes than this: the best and the worst half of this many


def extreme_classes(scores: pd.Series, limit: int = MAX_CLASSES) -> tuple[list, int]:
    """(columns to show, how many left out): all when ``len(scores) <= limit``, else the ``limit // 2`` highest
    and ``limit // 2`` lowest ``scores`` (NaN last), highest first."""
    order = scores.sort_values(ascending=False, na_position="last").index.tolist()
    if len(order) <= limit:
        return list(scores.index), 0
    known = [c for c in order if np.isfinite(scores[c])]
    half = limit // 2
    shown = known[:half] + [c for c in known[-half:] if c not in known[:half]]
    return shown, len(order) - len(shown)


def class_axis_label(shown: int, left_out: int, without_value: int, *, ends: str) -> str:
    """The class axis' label, saying which classes the figure leaves out and why."""
    notes = [f"the {shown // 2} {ends} ({left_out} more not shown)"] if left_out else []
    notes += [f"{without_value} without a value (absent from the split) not shown"] if without_value else []
    return "class" + (": " + "; ".join(notes) if notes else "")


def plot_class_iou(class_iou: pd.DataFrame, *, ax=None):
    """``class_iou``: variants (rows) × classes (columns), IoU as fractions."""
    with_value = class_iou.dropna(axis=1, how="all")
    columns, left_out = extreme_classes(with_value.mean(axis=0))
    without_value = class_iou.shape[1] - with_value.shape[1]
    class_iou = class_iou[columns]
    values = 100 * class_iou.to_numpy(dtype=float)
    # colour over the observed range: differences of a few points are the point of the figure
    low, high = (float(np.nanmin(values)), float(np.nanmax(values))) if np.isfinite(values).any() else (0.0, 1.0)
    low, high = (low - 1, high + 1) if high - low < 2 else (low, high)
    with style():
        ax = new_axes(ax, (1.2 + 0.8 * class_iou.shape[1], 1.5 + 0.55 * class_iou.shape[0]))
        sns.heatmap(100 * class_iou.astype(float), annot=True, fmt=".0f", cmap="viridis", vmin=low, vmax=high,
                    ax=ax, cbar_kws={"label": "IoU (%)"}, linewidths=0.5, annot_kws={"fontsize": 9})
        ax.set_xlabel(class_axis_label(len(columns), left_out, without_value, ends="best and worst by mean IoU"))
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
