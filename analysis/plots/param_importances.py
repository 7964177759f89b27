"""Optuna's hyperparameter-importance plot of one variant's tune phase (seeded, so reproducible)."""

from __future__ import annotations

from analysis.plots._optuna import optuna_axes


def importance_evaluator(seed: int = 0):
    """fANOVA (seeded) when scikit-learn is there, else PED-ANOVA (deterministic, no scikit-learn)."""
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    try:
        import sklearn  # noqa: F401 - fANOVA's dependency

        return FanovaImportanceEvaluator(seed=seed), "fANOVA"
    except ImportError:
        return PedAnovaImportanceEvaluator(), "PED-ANOVA"


def plot_param_importances(study, variant: str, *, seed: int = 0, ax=None):
    """``optuna.visualization.matplotlib.plot_param_importances``; returns the Axes."""
    from optuna.visualization.matplotlib import plot_param_importances as optuna_plot

    evaluator, method = importance_evaluator(seed)
    with optuna_axes(ax):
        ax = optuna_plot(study, evaluator=evaluator, target_name="validation mIoU")
        if not ax.patches:
            raise ValueError("no tuned parameter with spread")
        legend = ax.get_legend()
        if legend is not None:  # one objective: the legend only repeats the axis label (and may cover a bar)
            legend.remove()
        ax.set_title("")
        ax.set_title(f"Hyperparameter importance: {variant}", loc="left")
        ax.set_xlabel(f"importance ({method}; shares sum to 1)")
    return ax


PLACEMENT = "figures"


def figures(inputs) -> list:
    from analysis.plots.figure import Figure
    from analysis.plots.optimization_history import complete_trials_reason

    out = []
    for variant, study in inputs.tune_studies.items():
        caption = (f"Importance of the settings tuned for {variant} "
                   f"(Optuna's plot; fANOVA seeded, PED-ANOVA without scikit-learn).")
        out.append(Figure(f"param_importance_{variant}",
                          lambda ax, s=study, v=variant: plot_param_importances(s, v, seed=inputs.seed, ax=ax),
                          caption, PLACEMENT, complete_trials_reason(study)))
    return out
