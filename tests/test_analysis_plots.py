"""The report's plot functions: the ax contract, one colour per variant, and the fault-10 regressions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from analysis_runs import add_tune_phase, make_run_dir  # noqa: E402

from analysis import plots as P  # noqa: E402
from analysis.plots import registry  # noqa: E402
from analysis.plots.forest import band_share  # noqa: E402
from analysis.plots.power import power_x_max  # noqa: E402

ORDER = ["all_mlp", "progressive", "skip_fused", "unet_r34"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _seeds():
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"variant": v, "seed": s, "miou": 0.5 + 0.01 * i + rng.normal(0, 0.01)}
                         for i, v in enumerate(ORDER) for s in range(5)])


def _epochs(n_epochs=3):
    rng = np.random.default_rng(1)
    return pd.DataFrame([{"variant": v, "run_id": f"{v}-{s}", "epoch": e, "val_miou": 0.1 * e + rng.normal(0, 0.01)}
                         for v in ORDER for s in range(3) for e in range(1, n_epochs + 1)])


def _points():
    return pd.DataFrame([{"variant": v, "miou_mean": 0.5 + 0.01 * i, "miou_sd": 0.01, "fps_median": 100 - 10 * i,
                          "fps_q25": 98 - 10 * i, "fps_q75": 102 - 10 * i} for i, v in enumerate(ORDER)])


ISSUE_ROWS = [  # the issue's real study: a +2..+3 % band against a CI of [-0.3, +15.5], and a speed claim
    {"label": "skip_fused miou +2%..+3%", "unit": "%", "scale": 100, "estimate": 0.073, "ci": [-0.003, 0.155],
     "ci_wide": [-0.02, 0.17], "band": [0.02, 0.03], "verdict": "inconclusive"},
    {"label": "skip_fused fps -25%..-15%", "unit": "%", "scale": 100, "estimate": -0.18, "ci": [-0.22, -0.14],
     "band": [-0.25, -0.15], "verdict": "supported"},
    {"label": "unet_r34 miou, no claim", "unit": "%", "scale": 100, "estimate": -0.08, "ci_wide": [-0.1, -0.06]},
]
CURVES = [{"label": "skip_fused miou +2%..+3%", "n": list(range(2, 41)), "supported": list(np.linspace(0.05, 0.6, 39)),
           "settled": list(np.linspace(0.1, 0.7, 39)), "current_n": 10, "seeds_needed": 57}]

@pytest.fixture(scope="module")
def full_run_inputs(tmp_path_factory):
    """FigureInputs of a run with every kind of data: claims, seeds, latency, confusions, epochs, a tune phase
    and a budgets section, so every registered figure has something to draw."""
    from dataclasses import asdict

    from report_fixtures import synthetic_verdicts
    from test_budgets import CLAIM, seed_table

    from analysis import analyze
    from analysis.plots.registry import FigureInputs
    from analysis.run_reader import load_run, seed_rows
    from analysis.sections import budgets as B

    run = make_run_dir(tmp_path_factory.mktemp("plots") / "run", n_seeds=4, n_images=8)
    add_tune_phase(run, variants=("all_mlp",), n_trials=6)
    tables = load_run(run)
    verdicts = synthetic_verdicts(run)
    (budget_claim,) = B.budget_claims(seed_table({"6ep": -0.13, "15ep": 0.025}, sd=0.01), [CLAIM],
                                      baseline="all_mlp", budgets=["6ep", "15ep"])
    verdicts["budgets"] = {"claims": [asdict(budget_claim)]}
    verdicts["accuracy_cost"] = analyze(run, write=False, n_boot=200)["accuracy_cost"]
    return FigureInputs(verdicts, tables, seed_rows(tables.results, []))


def _module_name(module) -> str:
    return module.__name__.rsplit(".", 1)[1]


# the plot test is generated from the registry: every registered plot module, none listed by hand
@pytest.mark.parametrize("module", registry.modules(), ids=_module_name)
def test_every_registered_figure_draws_on_a_full_run_and_keeps_the_ax_contract(full_run_inputs, module):
    made = module.figures(full_run_inputs)
    assert made, f"{_module_name(module)}: no figure from a run that has every kind of data"
    for figure in made:
        assert figure.skip is None, (figure.name, figure.skip)
        assert figure.placement in registry.PLACEMENTS and figure.caption
        assert isinstance(figure.draw(None), matplotlib.axes.Axes)
        _, ax = plt.subplots()
        assert figure.draw(ax) is ax
        plt.close("all")


def test_every_plot_module_is_registered():
    import importlib
    import pkgutil

    import analysis.plots

    found = {m.name for m in pkgutil.iter_modules(analysis.plots.__path__)
             if hasattr(importlib.import_module(f"analysis.plots.{m.name}"), "PLACEMENT")}
    assert found == {_module_name(m) for m in registry.modules()}


def test_every_figure_is_written_by_the_one_writer(full_run_inputs, tmp_path):
    warnings, notes = [], []
    made = registry.make_figures(full_run_inputs, tmp_path, warnings=warnings, notes=notes)
    assert not warnings and not notes
    assert [made[n]["placement"] for n in ("forest", "budgets_miou", "most_accurate", "power")] == [
        "headline", "budgets", "accuracy_cost", "figures"]
    for name, paths in made.items():  # plots.save: PNG and SVG, the budget plots too
        assert paths["png"] == tmp_path / f"{name}.png" and paths["svg"].stat().st_size > 0, name


def _legend_plot(name):
    return {"tradeoff": lambda: P.plot_tradeoff(_points(), baseline="all_mlp"),
            "learning_curves": lambda: P.plot_learning_curves(_epochs(), ORDER),
            "power": lambda: P.plot_power(CURVES),
            "variance": lambda: P.plot_variance_components([{"label": "a", "sd": {"seed": 1.0, "image": 0.5}}])}[name]()


@pytest.fixture(scope="module")
def tune_study(tmp_path_factory):
    import optuna

    run = make_run_dir(tmp_path_factory.mktemp("tune") / "run", n_seeds=2, n_images=4, variants=("all_mlp",))
    add_tune_phase(run, variants=("all_mlp",), n_trials=6)
    return optuna.load_study(study_name="synthetic/all_mlp/tune", storage=f"sqlite:///{run / 'study.db'}")


@pytest.mark.parametrize("plot", [P.plot_optimization_history, P.plot_param_importances])
def test_optuna_plots_are_optunas_own_drawn_into_a_given_ax_without_leaking_its_style(tune_study, plot):
    before = dict(matplotlib.rcParams)
    made = plot(tune_study, "all_mlp")
    assert isinstance(made, matplotlib.axes.Axes)
    fig, ax = plt.subplots()
    assert plot(tune_study, "all_mlp", ax=ax) is ax
    assert "all_mlp" in ax.get_title(loc="left")
    assert ax.get_title() == ""  # Optuna's centred title replaced, not overprinted
    changed = {k for k, v in matplotlib.rcParams.items() if str(before.get(k)) != str(v)}
    assert not changed, f"Optuna's ggplot style leaked into rcParams: {sorted(changed)[:5]}"


def test_history_ticks_are_whole_trials_and_its_legend_is_outside(tune_study):
    ax = P.plot_optimization_history(tune_study, "all_mlp")
    ax.figure.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())
    assert not _overlaps_axes(ax)


# --- fault 10 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 8])
def test_every_variant_gets_its_own_colour(n):
    names = [f"v{i}" for i in range(n)]
    colours = P.variant_colours(names)
    assert len(set(colours.values())) == n
    assert P.variant_colours(names) == colours  # stable: the same variant, the same colour everywhere


def test_colours_stay_distinct_past_the_palette():
    assert len(set(P.variant_colours(range(20)).values())) == 20


def test_same_colour_for_a_variant_in_every_figure():
    colours = P.variant_colours(ORDER)
    ax = P.plot_learning_curves(_epochs(), ORDER, colours=colours)
    lines = {line.get_label().split(" ")[0]: line.get_color() for line in ax.get_lines()}
    ax2 = P.plot_tradeoff(_points().iloc[::-1], colours=colours)  # order of rows must not matter
    marks = {c.get_label(): c.lines[0].get_color() for c in ax2.containers}
    for v in ORDER:
        assert matplotlib.colors.same_color(lines[v], colours[v])
        assert matplotlib.colors.same_color(marks[v if v != "all_mlp" else v], colours[v])


@pytest.mark.parametrize("n_epochs", [2, 3, 4])
def test_learning_curve_ticks_are_whole_epochs(n_epochs):
    ax = P.plot_learning_curves(_epochs(n_epochs), ORDER)
    ax.figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def _overlaps_axes(ax) -> bool:
    legend = ax.get_legend()
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    return legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


@pytest.mark.parametrize("name", ["tradeoff", "learning_curves", "power", "variance"])
def test_legends_never_cover_the_data(name):
    ax = _legend_plot(name)
    assert ax.get_legend() is not None and not _overlaps_axes(ax)


@pytest.mark.parametrize("needed", [12, 57, 781])
def test_power_axis_reaches_the_seeds_it_reports(needed):
    curves = [{**CURVES[0], "seeds_needed": needed}]
    ax = P.plot_power(curves)
    assert ax.get_xlim()[1] >= needed
    assert power_x_max(curves) >= needed


def test_power_axis_reaches_the_current_n_beyond_the_curve():
    ax = P.plot_power([{**CURVES[0], "current_n": 48, "seeds_needed": None}])
    assert ax.get_xlim()[1] >= 48


def test_forest_draws_each_claim_in_its_own_panel_with_a_readable_band():
    ax = P.plot_forest(ISSUE_ROWS)
    ax.figure.canvas.draw()
    panels = ax.child_axes
    assert len(panels) == 3
    # the 1-point band beside a 16-point interval: a shared axis would give it ~2 % of the width
    assert band_share(panels[0]) >= 0.2
    assert band_share(panels[1]) >= 0.2
    # the magnified axis still shows true values: the band edges are ticks
    assert {2.0, 3.0} <= {round(t, 6) for t in panels[0].get_xticks()}
    lo, hi = panels[0].get_xlim()
    assert lo <= -0.3 and hi >= 15.5  # the whole interval stays visible
    assert panels[1].get_xlim()[0] <= -25 and panels[1].get_xlim()[1] >= 0  # each panel in its own range


def test_forest_without_any_estimate_still_draws():
    ax = P.plot_forest([{"label": "x miou +2%..+3%", "estimate": None, "band": [0.02, 0.03], "scale": 100,
                         "note": "no paired seeds"}])
    assert len(ax.child_axes) == 1


def test_save_writes_png_and_svg(tmp_path):
    paths = P.save(P.plot_forest(ISSUE_ROWS), tmp_path, "forest")
    assert paths["png"].read_bytes()[:4] == b"\x89PNG" and paths["svg"].stat().st_size > 1000


def _text_boxes(ax):
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in ax.texts if t.get_text().strip() and t.get_visible()]


def test_power_labels_never_overlap():
    curves = [{**CURVES[0], "label": f"claim {i}", "current_n": n, "seeds_needed": need}
              for i, (n, need) in enumerate([(3, 3), (5, 4), (10, 49)])]
    boxes = _text_boxes(P.plot_power(curves))
    assert len(boxes) >= 3  # 80 %, "n=3, 5" (too close for two labels), "n=10"
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
