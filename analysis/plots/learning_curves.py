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


PLACEMENT = "figures"
CAPTION = "Validation mIoU by epoch, mean ± 1 sd over seeds."


def seed_epochs(tables) -> pd.DataFrame | None:
    """epochs.csv rows of seed-phase runs with their variant (joined from results.csv by run_id)."""
    epochs = getattr(tables, "epochs", None)
    if epochs is None or epochs.empty:
        return None
    if "run_id" in epochs.columns:
        info = tables.results[["run_id", "variant", "phase"]].drop_duplicates("run_id", keep="last")
        epochs = epochs.astype({"run_id": str}).drop(columns=[c for c in ("variant", "phase") if c in epochs])
        epochs = epochs.merge(info.astype({"run_id": str}), on="run_id", how="inner")
    if "variant" not in epochs.columns:
        return None
    if "phase" in epochs.columns and (epochs["phase"] == "seed").any():
        epochs = epochs[epochs["phase"] == "seed"]
    return epochs.dropna(subset=["epoch", "val_miou"])


def figures(inputs) -> list:
    from analysis.plots.figure import Figure

    epochs = seed_epochs(inputs.tables)
    has_epochs = epochs is not None and epochs["variant"].isin(inputs.order).any()
    return [Figure("learning_curves", lambda ax: plot_learning_curves(epochs, inputs.order, colours=inputs.colours,
                                                                      ax=ax),
                   CAPTION, PLACEMENT, None if has_epochs else "no epochs.csv rows for finished seed runs")]
