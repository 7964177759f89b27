"""A claim's effect against the training budget, one panel per claim, one figure per metric."""

from __future__ import annotations

import math

import numpy as np

from analysis.sections.budgets import BudgetClaim

PLACEMENT = "budgets"
CAPTION = ("The claim's effect at each training budget with the verdict's interval; the shaded band is the claim, "
           "the label the verdict at that budget; the title gives the budget × variant interaction p.")


def plot_effect_vs_budget(result: BudgetClaim, ax=None, *, color: str = "#0072B2"):
    """Effect (with its (1 - 2 alpha) interval) against the budget for one claim; the band shaded. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 + 1.1 * len(result.budgets), 3.2))
    scale = (lambda v: 100 * math.expm1(v)) if result.relative else (lambda v: v)
    xs = np.arange(len(result.budgets))
    est = np.array([scale(b.estimate) for b in result.budgets])
    lo = np.array([scale(b.ci[0]) for b in result.budgets])
    hi = np.array([scale(b.ci[1]) for b in result.budgets])
    ax.axhspan(scale(result.band[0]), scale(result.band[1]), color="#009E73", alpha=0.18, lw=0, label="claimed band")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.errorbar(xs, est, yerr=[est - lo, hi - est], fmt="o-", color=color, capsize=4, lw=1.4, label="effect, (1-2α) CI")
    for x, b, y in zip(xs, result.budgets, np.where(np.isfinite(hi), hi, est)):
        ax.annotate(b.verdict + (f"\n({b.direction})" if b.direction else ""), (x, y), textcoords="offset points",
                    xytext=(0, 6), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, [b.budget for b in result.budgets])
    ax.set_xlim(-0.5, len(xs) - 0.5)
    finite = np.isfinite(lo) & np.isfinite(hi)  # a budget without an interval is drawn as its estimate only
    ymin = min(np.min(lo[finite], initial=0.0), np.nanmin(est, initial=0.0), scale(result.band[0]), 0)
    ymax = max(np.max(hi[finite], initial=0.0), np.nanmax(est, initial=0.0), scale(result.band[1]), 0)
    pad = 0.25 * (ymax - ymin or 1)
    ax.set_ylim(ymin - 0.1 * pad, ymax + pad)
    ax.set_xlabel("training budget")
    ax.set_ylabel(f"{result.metric} effect vs baseline" + (" (%)" if result.relative else ""))
    p = result.interaction.get("p", math.nan)
    ax.set_title(f"{result.claim}" + (f"\ninteraction p = {p:.3g}" if np.isfinite(p) else ""), fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return ax


def plot_budget_figure(results: list[BudgetClaim], metric: str, ax=None):
    """One figure for one metric, one panel per claim; returns the first panel's Axes (its figure holds all).
    ``ax``: draw into it (only when the metric has one claim)."""
    import matplotlib.pyplot as plt

    mine = [r for r in results if r.metric == metric]
    if ax is not None:
        if len(mine) != 1:
            raise ValueError(f"{len(mine)} {metric} claims need one panel each: pass ax=None")
        return plot_effect_vs_budget(mine[0], ax=ax)
    fig, axes = plt.subplots(1, len(mine), figsize=(4.6 * len(mine), 3.6), squeeze=False)
    for panel, r in zip(axes[0], mine):
        plot_effect_vs_budget(r, ax=panel)
    fig.tight_layout()
    return axes[0][0]


def budget_results(verdicts: dict) -> list[BudgetClaim]:
    return [BudgetClaim.from_dict(c) for c in (verdicts.get("budgets") or {}).get("claims") or []]


def figures(inputs) -> list:
    """One figure per metric of verdicts.json's budgets section (none without one)."""
    from analysis.plots.figure import Figure

    results = budget_results(inputs.verdicts)
    return [Figure(f"budgets_{metric}", lambda ax, m=metric: plot_budget_figure(results, m, ax=ax), CAPTION, PLACEMENT)
            for metric in sorted({r.metric for r in results})]
