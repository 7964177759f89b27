"""Accuracy against cost for many variants: mIoU with its seeds x images interval against GFLOPs
(or measured throughput), the Pareto front joined and its variants outlined in bold and marked in the legend."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from analysis.plots.style import legend_outside, new_axes, style, variant_colours, variant_markers


def plot_accuracy_cost(points: pd.DataFrame, *, cost: str, cost_label: str, higher_cost_is_better: bool = False,
                       level: float = 90, baseline: str | None = None, colours: dict | None = None, ax=None):
    """``points``: one row per variant with ``variant, miou, miou_lo, miou_hi, on_front`` and the ``cost``
    column. ``higher_cost_is_better`` for throughput (the front then runs up and to the right)."""
    points = points[np.isfinite(points[cost].astype(float))].sort_values(cost)
    colours = colours or variant_colours(points["variant"])
    markers = variant_markers(colours)
    with style():
        ax = new_axes(ax, (7.2, 4.6))
        front = points[points["on_front"]]
        ax.plot(front[cost], 100 * front["miou"], color="#999999", lw=1.4, ls="--", zorder=1,
                label="Pareto front")
        for _, p in points.iterrows():
            yerr = [[100 * (p["miou"] - p["miou_lo"])], [100 * (p["miou_hi"] - p["miou"])]]
            # a legend, not labels at the points: heads of similar cost sit on top of each other
            label = p["variant"] + (" (baseline)" if p["variant"] == baseline else "")
            ax.errorbar(p[cost], 100 * p["miou"], yerr=yerr, fmt=markers[p["variant"]], ms=9, capsize=4,
                        color=colours[p["variant"]], markeredgecolor="black", mew=1.6 if p["on_front"] else 0.5,
                        elinewidth=1.6, zorder=3, alpha=1.0 if p["on_front"] else 0.75,
                        label=label + (" — on the front" if p["on_front"] else ""))
        costs = points[cost].astype(float)
        if len(costs) and costs.min() > 0 and costs.max() / costs.min() > 10:
            ax.set_xscale("log")  # heads differ by orders of magnitude in cost: equal ratios, equal distances
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        else:
            ax.set_xlim(left=0)
            ax.margins(x=0.1)
        better = "up and to the right" if higher_cost_is_better else "up and to the left"
        ax.set_xlabel(cost_label + (" (log scale)" if ax.get_xscale() == "log" else ""))
        ax.set_ylabel(f"test mIoU (%, mean; bars = {level:g} % interval, seeds × images)")
        ax.set_title(f"Accuracy vs cost: {better} is better")
        legend_outside(ax)
    return ax


PLACEMENT = "accuracy_cost"
CAPTIONS = {
    "gflops": "Test mIoU with its {level} % interval over seeds × test images against GFLOPs per image at the study's "
              "input size; the dashed line joins the Pareto front (no other variant is more accurate for fewer "
              "GFLOPs), whose variants are named in bold.",
    "fps": "Test mIoU with its {level} % interval over seeds × test images against measured throughput (median over "
           "latency rounds); the dashed line joins the Pareto front.",
}
COSTS = {"gflops": ("GFLOPs per image (study input size)", False),
         "fps": ("throughput (images/s, median over latency rounds)", True)}


def accuracy_cost_points(section: dict, cost: str) -> pd.DataFrame:
    """One row per variant with a finite ``cost``: variant, miou, miou_lo, miou_hi, on_front, cost."""
    from analysis.report.text import finite, interval

    front = set((section.get("pareto") or {}).get(cost) or [])
    rows = [{"variant": v, "miou": r["miou"], "miou_lo": (interval(r.get("ci")) or [r["miou"]] * 2)[0],
             "miou_hi": (interval(r.get("ci")) or [r["miou"]] * 2)[1], "on_front": v in front, cost: r.get(cost)}
            for v, r in section["variants"].items() if finite(r.get(cost)) and finite(r.get("miou"))]
    return pd.DataFrame(rows, columns=["variant", "miou", "miou_lo", "miou_hi", "on_front", cost])


def figures(inputs) -> list:
    """mIoU vs each cost, from verdicts.json's accuracy_cost section (none when it is not available)."""
    from analysis.plots.figure import Figure

    section = inputs.verdicts.get("accuracy_cost") or {}
    if not section.get("available"):
        return []
    out = []
    level = 100 * (1 - 2 * inputs.verdicts["alpha"])
    for cost, (label, higher) in COSTS.items():
        points = accuracy_cost_points(section, cost)
        out.append(Figure(f"accuracy_vs_{cost}",
                          lambda ax, p=points, c=cost, lab=label, h=higher: plot_accuracy_cost(
                              p, cost=c, cost_label=lab, higher_cost_is_better=h, level=100 * section["level"],
                              baseline=inputs.baseline, colours=inputs.colours, ax=ax),
                          CAPTIONS[cost].format(level=f"{level:g}"), PLACEMENT,
                          None if len(points) >= 2 else f"needs {cost} of at least two variants"))
    return out
