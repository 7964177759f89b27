"""Test mIoU of every seed run per variant; thin grey lines join runs that share a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.plots.style import new_axes, style, variant_colours


def plot_miou_by_seed(seeds: pd.DataFrame, order: list[str], *, baseline: str | None = None,
                      colours: dict | None = None, ax=None):
    """Box per variant plus one point per seed (columns ``variant, seed, miou``); returns the Axes.

    Each seed gets the same small horizontal offset in every variant, so points do not overlap
    and the lines joining a seed across variants land exactly on them.
    """
    colours = colours or variant_colours(order)
    data = seeds[seeds["variant"].isin(order)].assign(miou_pct=lambda d: 100 * d["miou"])
    wide = data.pivot_table(index="seed", columns="variant", values="miou_pct", aggfunc="last").sort_index()
    offsets = dict(zip(wide.index, np.linspace(-0.16, 0.16, len(wide)) if len(wide) > 1 else [0.0]))
    with style():
        ax = new_axes(ax, (1.9 * len(order) + 2.5, 4.6))
        for x, variant in enumerate(order):
            values = data.loc[data["variant"] == variant, "miou_pct"].dropna().to_numpy()
            if len(values):
                box = ax.boxplot(values, positions=[x], widths=0.5, showfliers=False, patch_artist=True,
                                 medianprops={"color": "black"}, whiskerprops={"color": "0.35"},
                                 capprops={"color": "0.35"})
                for patch in box["boxes"]:
                    patch.set(facecolor=colours[variant], alpha=0.3, edgecolor="0.35")
        for seed, row in wide.iterrows():
            present = [v for v in order if v in row and not pd.isna(row[v])]
            xs = [order.index(v) + offsets[seed] for v in present]
            ys = [row[v] for v in present]
            ax.plot(xs, ys, color="0.55", lw=0.6, alpha=0.55, zorder=3)
            ax.scatter(xs, ys, c=[colours[v] for v in present], s=34, edgecolor="black", linewidth=0.5, zorder=4)
        counts = data.groupby("variant")["miou_pct"].count()
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([f"{v}{chr(10) + '(baseline)' if v == baseline else ''}\nn={counts.get(v, 0)}"
                            for v in order])
        ax.set_xlim(-0.6, len(order) - 0.4)
        ax.set_ylabel("test mIoU (%)")
        ax.set_title("Test mIoU per seed (grey lines join runs with the same seed)")
    return ax


PLACEMENT = "figures"
CAPTION = "Test mIoU of every seed run per variant; thin lines join runs that share a seed."


def figures(inputs) -> list:
    from analysis.plots.figure import Figure

    return [Figure("miou_by_seed", lambda ax: plot_miou_by_seed(inputs.seeds, inputs.order, baseline=inputs.baseline,
                                                                colours=inputs.colours, ax=ax),
                   CAPTION, PLACEMENT, None if inputs.order else "no finished seed runs")]
