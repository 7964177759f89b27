"""Accuracy vs speed: mIoU mean ± sd over seeds against throughput median with its IQR."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.plots.style import legend_outside, new_axes, style, variant_colours, variant_markers


def plot_tradeoff(points: pd.DataFrame, *, baseline: str | None = None, colours: dict | None = None, ax=None):
    """``points``: one row per variant with ``variant, miou_mean, miou_sd, fps_median, fps_q25, fps_q75``."""
    colours = colours or variant_colours(points["variant"])
    markers = variant_markers(colours)
    with style():
        ax = new_axes(ax, (7.2, 4.6))
        for _, p in points.iterrows():
            xerr = [[p["fps_median"] - p["fps_q25"]], [p["fps_q75"] - p["fps_median"]]]
            sd = p["miou_sd"]
            yerr = [[100 * (0.0 if sd is None or not np.isfinite(sd) else sd)]] * 2
            ax.errorbar(p["fps_median"], 100 * p["miou_mean"], xerr=xerr, yerr=yerr, fmt=markers[p["variant"]],
                        ms=9, color=colours[p["variant"]], elinewidth=1.6, capsize=4, markeredgecolor="black",
                        mew=0.6, label=p["variant"] + (" (baseline)" if p["variant"] == baseline else ""))
        ax.set_xlabel("throughput (images/s, median; bars = IQR over latency rounds)")
        ax.set_ylabel("test mIoU (%, mean; bars = ±1 sd over seeds)")
        ax.set_title("Accuracy vs speed: up and to the right is better")
        ax.margins(x=0.15, y=0.15)
        legend_outside(ax)
    return ax


PLACEMENT = "figures"
CAPTION = "Accuracy vs throughput, error bars in both axes."


def tradeoff_points(verdicts: dict) -> pd.DataFrame:
    from analysis.report.text import finite

    keys = ["miou_mean", "miou_sd", "fps_median", "fps_q25", "fps_q75"]
    rows = [{"variant": n, **{k: v.get(k) for k in keys}} for n, v in verdicts["variants"].items()
            if finite(v.get("miou_mean")) and finite(v.get("fps_median"))]
    return pd.DataFrame(rows, columns=["variant", *keys]).astype({k: float for k in keys})


def figures(inputs) -> list:
    from analysis.plots.figure import Figure

    points = tradeoff_points(inputs.verdicts)
    return [Figure("tradeoff", lambda ax: plot_tradeoff(points, baseline=inputs.baseline, colours=inputs.colours, ax=ax),
                   CAPTION, PLACEMENT, None if len(points) else "needs latency rounds and seed runs of the same variants")]
