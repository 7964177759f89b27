"""P(each variant is the most accurate), over seeds x test images, as horizontal bars."""

from __future__ import annotations

import pandas as pd

from analysis.plots.style import new_axes, style, variant_colours


def plot_most_accurate(probabilities: pd.DataFrame, *, colours: dict | None = None, ax=None):
    """``probabilities``: one row per variant with ``variant, p_best`` (shown highest first)."""
    rows = probabilities.sort_values("p_best")
    colours = colours or variant_colours(rows["variant"])
    with style():
        ax = new_axes(ax, (6.4, 0.5 + 0.42 * len(rows)))
        ax.barh(rows["variant"], 100 * rows["p_best"], color=[colours[v] for v in rows["variant"]],
                edgecolor="black", linewidth=0.5)
        for y, p in enumerate(rows["p_best"]):
            ax.text(100 * p + 1, y, f"{100 * p:.1f} %", va="center", fontsize=8.5)
        ax.set_xlim(0, 112)
        ax.set_xlabel("P(highest mean test mIoU), %  (seeds and test images resampled)")
        ax.set_title("Which variant is the most accurate?")
        ax.grid(axis="y", visible=False)
    return ax


PLACEMENT = "accuracy_cost"
CAPTION = ("Probability that each variant has the highest mean test mIoU, with seeds and test images resampled "
           "(pigeonhole bootstrap): a ranking's uncertainty, not an effect size.")


def figures(inputs) -> list:
    """P(most accurate) per variant, from verdicts.json's accuracy_cost section (none when it is not available)."""
    from analysis.plots.figure import Figure
    from analysis.report.text import finite

    section = inputs.verdicts.get("accuracy_cost") or {}
    if not section.get("available"):
        return []
    best = pd.DataFrame([{"variant": v, "p_best": r.get("p_most_accurate")} for v, r in section["variants"].items()
                         if finite(r.get("p_most_accurate"))], columns=["variant", "p_best"])
    return [Figure("most_accurate", lambda ax: plot_most_accurate(best, colours=inputs.colours, ax=ax), CAPTION,
                   PLACEMENT, None if len(best) else "no variant with a P(most accurate)")]
