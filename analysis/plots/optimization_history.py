"""Optuna's optimisation history (objective per trial and best so far) of one variant's tune phase."""

from __future__ import annotations

from matplotlib.ticker import MaxNLocator

from analysis.plots._optuna import optuna_axes


def plot_optimization_history(study, variant: str, *, ax=None):
    """``optuna.visualization.matplotlib.plot_optimization_history`` with our title; returns the Axes."""
    import optuna
    from optuna.visualization.matplotlib import plot_optimization_history as optuna_plot

    trials = study.get_trials(deepcopy=False)
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    with optuna_axes(ax):
        ax = optuna_plot(study, target_name="validation mIoU")
        ax.set_title("")  # Optuna's centred default title, replaced by ours
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers are whole
        ax.set_title(f"Optuna history: {variant} ({complete} complete, {pruned} pruned)", loc="left")
        ax.set_xlabel("trial")
        legend = ax.get_legend()
        if legend is not None:  # Optuna's legend: outside, where it covers no trial
            handles, labels = ax.get_legend_handles_labels()
            ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                      frameon=False)
    return ax


PLACEMENT = "figures"


def figures(inputs) -> list:
    from analysis.plots.figure import Figure

    out = []
    for variant, study in inputs.tune_studies.items():
        caption = f"Optuna tune phase of {variant}: objective per trial and best so far."
        out.append(Figure(f"optuna_history_{variant}",
                          lambda ax, s=study, v=variant: plot_optimization_history(s, v, ax=ax), caption, PLACEMENT,
                          complete_trials_reason(study)))
    return out


def complete_trials_reason(study) -> str | None:
    """Why a tune study is too small to plot (None when it has >= 2 complete trials)."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    return None if len(complete) >= 2 else f"{len(complete)} complete trial(s): need 2"
