"""The report's figures, one module per plot (rliable / Optuna style).

Every ``plot_*`` function takes tidy data and ``ax=None`` and returns the Axes it drew on;
the caller creates figures and saves them (``save``). Colours and layout rules live in
``style`` (one colour per variant, legends outside the data). The Optuna figures are
Optuna's own matplotlib plots, kept inside our style.
"""

from __future__ import annotations

from pathlib import Path

from analysis.plots.accuracy_cost import plot_accuracy_cost
from analysis.plots.class_delta import plot_class_delta
from analysis.plots.class_iou import plot_class_iou
from analysis.plots.forest import plot_forest
from analysis.plots.learning_curves import plot_learning_curves
from analysis.plots.miou_by_seed import plot_miou_by_seed
from analysis.plots.most_accurate import plot_most_accurate
from analysis.plots.optimization_history import plot_optimization_history
from analysis.plots.param_importances import plot_param_importances
from analysis.plots.power import plot_power
from analysis.plots.style import VERDICT_COLOURS, style, variant_colours
from analysis.plots.tradeoff import plot_tradeoff
from analysis.plots.variance import plot_variance_components

__all__ = ["VERDICT_COLOURS", "plot_accuracy_cost", "plot_class_delta", "plot_class_iou", "plot_forest", "plot_learning_curves",
           "plot_miou_by_seed", "plot_most_accurate", "plot_optimization_history", "plot_param_importances", "plot_power",
           "plot_tradeoff", "plot_variance_components", "save", "style", "variant_colours"]


def save(ax, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Write the Axes' figure as ``name.png`` and ``name.svg`` and close it."""
    import matplotlib.pyplot as plt

    fig = ax.figure
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"png": out_dir / f"{name}.png", "svg": out_dir / f"{name}.svg"}
    try:
        fig.savefig(paths["png"], dpi=150, bbox_inches="tight")
        fig.savefig(paths["svg"], bbox_inches="tight")
    finally:
        plt.close(fig)
    return paths
