"""Per-class IoU change vs the baseline (variant − baseline, points), diverging around 0.

With many classes only the most improved and the most degraded (by the mean change over variants) are
shown, and the axis says how many are left out (``extreme_classes``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.plots.class_iou import class_axis_label, extreme_classes
from analysis.plots.style import new_axes, style


def plot_class_delta(class_delta: pd.DataFrame, *, baseline: str, ax=None):
    """``class_delta``: non-baseline variants (rows) × classes (columns), IoU change as fractions."""
    with_value = class_delta.dropna(axis=1, how="all")
    columns, left_out = extreme_classes(with_value.mean(axis=0))
    without_value = class_delta.shape[1] - with_value.shape[1]
    class_delta = class_delta[columns]
    values = 100 * class_delta.to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    limit = limit if np.isfinite(limit) and limit > 0 else 1.0
    with style():
        ax = new_axes(ax, (1.2 + 0.8 * class_delta.shape[1], 1.5 + 0.55 * class_delta.shape[0]))
        sns.heatmap(100 * class_delta.astype(float), annot=True, fmt="+.1f", cmap="vlag", center=0, vmin=-limit,
                    vmax=limit, ax=ax, cbar_kws={"label": "IoU change (points)"}, linewidths=0.5,
                    annot_kws={"fontsize": 9})
        ax.set_xlabel(class_axis_label(len(columns), left_out, without_value,
                                       ends="most improved and most degraded"))
        ax.set_ylabel("variant")
        ax.set_title(f"Per-class IoU change vs {baseline} (points, mean over seeds)")
        ax.tick_params(axis="x", rotation=40)
        ax.tick_params(axis="y", rotation=0)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    return ax


PLACEMENT = "figures"
CAPTION = "Per-class IoU change vs the baseline, in points."


def figures(inputs) -> list:
    from analysis.plots.class_iou import class_tables
    from analysis.plots.figure import Figure

    _, class_delta = class_tables(inputs.verdicts["variants"], inputs.baseline)
    has_delta = class_delta is not None and class_delta.notna().any().any()
    return [Figure("class_delta", lambda ax: plot_class_delta(class_delta, baseline=inputs.baseline, ax=ax),
                   CAPTION, PLACEMENT, None if has_delta else "needs iou_<class> columns and seed runs of the baseline")]
