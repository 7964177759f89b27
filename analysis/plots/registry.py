"""The figure registry: which figures a report has, in report order (Optuna's ``visualization/_*.py`` split).

Each plot module owns its renderer (``plot_*``), its data preparation from verdicts.json and the run's tables,
its caption and its placement: ``figures(inputs) -> [Figure]``. Adding a plot is one module and one line in
``MODULES``; every figure is written by ``plots.save``.
"""

from __future__ import annotations

from pathlib import Path

from analysis.plots.figure import PLACEMENTS, Figure, FigureInputs  # noqa: F401 - the registry's public names


def modules() -> list:
    """The plot modules, in report order (imported here, so that ``import analysis.plots`` stays light)."""
    from analysis.plots import (
        accuracy_cost,
        class_delta,
        class_iou,
        effect_vs_budget,
        forest,
        learning_curves,
        miou_by_seed,
        most_accurate,
        optimization_history,
        param_importances,
        power,
        tradeoff,
        variance,
    )

    return [forest, effect_vs_budget, miou_by_seed, tradeoff, variance, class_iou, class_delta, learning_curves,
            accuracy_cost, most_accurate,
            optimization_history, param_importances, power]


def figures(inputs: FigureInputs, only=None) -> list[Figure]:
    """The registered figures prepared from ``inputs`` (``only``: those plot modules)."""
    out = [f for module in (only or modules()) for f in module.figures(inputs)]
    for f in out:
        assert f.placement in PLACEMENTS, (f.name, f.placement)
    return out


def make_figures(inputs: FigureInputs, out_dir: Path, *, warnings: list[str], notes: list[str],
                 only=None) -> dict[str, dict]:
    """Every figure the data support, drawn and saved: ``name -> {png, svg, caption, placement}``, in report
    order. A figure the data do not support becomes a note; one that fails to draw, a warning."""
    made = {}
    for figure in figures(inputs, only):
        if figure.skip:
            notes.append(f"{figure.name}: {figure.skip}")
            continue
        paths = _guarded(figure, out_dir, warnings)
        if paths:
            made[figure.name] = {**paths, "caption": figure.caption, "placement": figure.placement}
    return made


def _guarded(figure: Figure, out_dir: Path, warnings: list[str]) -> dict | None:
    import matplotlib.pyplot as plt

    from analysis.plots import save, style

    try:
        with style():
            return save(figure.draw(None), out_dir, figure.name)
    except Exception as exc:  # noqa: BLE001 - one broken figure must not cost the whole report
        plt.close("all")
        text = str(exc).splitlines()[0] if str(exc) else ""
        warnings.append(f"plot {figure.name} skipped: {type(exc).__name__}: {text}")
        return None
