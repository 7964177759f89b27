"""Validation mIoU by epoch per variant: mean over seeds with a ±1 sd band."""

from __future__ import annotations

import pandas as pd
from matplotlib.ticker import MaxNLocator

from analysis.plots.style import legend_outside, new_axes, style, variant_colours, variant_markers


def plot_learning_curves(epochs: pd.DataFrame, order: list[str], *, colours: dict | None = None, ax=None):
    """``epochs``: rows with ``variant, epoch, val_miou`` (and ``run_id`` to count runs)."""
    colours = colours or variant_colours(order)
    markers = variant_markers(colours)  # shape as well as colour, for readers who cannot tell the colours apart
    with style():
        ax = new_axes(ax, (7.5, 4.6))
        for variant in order:
            rows = epochs[epochs["variant"] == variant]
            if rows.empty:
                continue
            stats = rows.groupby("epoch")["val_miou"].agg(["mean", "std", "count"]).sort_index()
            mean, sd = 100 * stats["mean"], 100 * stats["std"].fillna(0)
            n_runs = rows["run_id"].nunique() if "run_id" in rows else int(stats["count"].max())
            ax.plot(stats.index, mean, color=colours[variant], lw=2, marker=markers[variant], ms=4.5,
                    label=f"{variant} (n={n_runs})")
            ax.fill_between(stats.index, mean - sd, mean + sd, color=colours[variant], alpha=0.18, lw=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation mIoU (%)")
        ax.set_title("Learning curves (mean ± 1 sd over seeds)")
        legend_outside(ax)
    return ax
