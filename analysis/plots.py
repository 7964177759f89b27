"""Figures for the report: each function takes tidy data and returns ``(fig, ax)``.

Matplotlib runs headless (Agg). Colours come from seaborn's colourblind palette
and stay fixed per variant across figures, so a reader can follow one variant
from plot to plot. mIoU is drawn in percent (the unit people quote), effects vs
the baseline as relative change in percent.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

VERDICT_COLOURS = {"supported": "#009E73", "refuted": "#D55E00", "inconclusive": "#7f7f7f"}


@contextlib.contextmanager
def _style():
    # A local style, so importing analysis never changes a caller's matplotlib defaults.
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=1.05):
        with plt.rc_context({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold"}):
            with warnings.catch_warnings():
                # seaborn 0.13's heatmap calls a colormap method matplotlib 3.11 marks as pending removal
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                yield


def variant_colours(variants: Iterable[str]) -> dict[str, tuple]:
    variants = list(variants)
    palette = sns.color_palette("colorblind", max(len(variants), 1))
    return {v: palette[i % len(palette)] for i, v in enumerate(variants)}


def save(fig, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Write ``name.png`` and ``name.svg`` and close the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"png": out_dir / f"{name}.png", "svg": out_dir / f"{name}.svg"}
    try:
        fig.savefig(paths["png"], dpi=150)
        fig.savefig(paths["svg"])
    finally:
        plt.close(fig)
    return paths


# --- seeds -------------------------------------------------------------------------------------


def miou_by_seed(seeds: pd.DataFrame, order: list[str], baseline: str | None = None):
    """Per-variant test mIoU over seeds: box + points, thin lines join the same seed across variants.

    Each seed gets the same small horizontal offset in every variant, so the points do not
    overlap and the lines land exactly on them.
    """
    data = seeds[seeds["variant"].isin(order)].assign(miou_pct=lambda d: 100 * d["miou"])
    colours = variant_colours(order)
    wide = data.pivot_table(index="seed", columns="variant", values="miou_pct", aggfunc="last").sort_index()
    offsets = dict(zip(wide.index, np.linspace(-0.16, 0.16, len(wide)) if len(wide) > 1 else [0.0]))
    x_of = {v: i for i, v in enumerate(order)}
    with _style():
        fig, ax = plt.subplots(figsize=(1.9 * len(order) + 2.5, 4.8))
        sns.boxplot(data=data, x="variant", y="miou_pct", order=order, hue="variant", hue_order=order,
                    palette=colours, width=0.5, fliersize=0, boxprops={"alpha": 0.3}, ax=ax, legend=False)
        for s, row in wide.iterrows():
            present = [v for v in order if v in row and not pd.isna(row[v])]
            xs = [x_of[v] + offsets[s] for v in present]
            ax.plot(xs, [row[v] for v in present], color="0.55", lw=0.6, alpha=0.55, zorder=3)
            ax.scatter(xs, [row[v] for v in present], c=[colours[v] for v in present], s=34, edgecolor="black",
                       linewidth=0.5, zorder=4)
        counts = data.groupby("variant").size()
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([_variant_label(v, baseline, counts.get(v, 0)) for v in order])
        ax.set_xlabel("")
        ax.set_ylabel("test mIoU (%)")
        ax.set_title("Test mIoU per seed (grey lines join runs with the same seed)")
        fig.tight_layout()
    return fig, ax


def _variant_label(variant: str, baseline: str | None, n: int) -> str:
    tag = "\n(baseline)" if variant == baseline else ""
    return f"{variant}{tag}\nn={n}"


# --- effects vs baseline -----------------------------------------------------------------------


def forest(rows: list[dict], *, alpha: float = 0.05):
    """Relative effect vs the baseline per row, with its CIs and the claimed band shaded.

    ``rows``: dicts with ``label``, ``estimate``, ``ci`` (the 1 − alpha interval) and
    optionally ``ci_verdict`` (the 1 − 2·alpha interval the band verdict uses), ``band``,
    ``verdict``, ``direction``, ``group`` (rows of different groups are separated);
    relative changes as fractions.
    """
    level, level_verdict = 100 * (1 - alpha), 100 * (1 - 2 * alpha)
    with _style():
        fig, ax = plt.subplots(figsize=(8.5, 1.3 + 0.7 * max(len(rows), 1)))
        placed = list(enumerate(reversed(rows)))
        for y, row in placed:
            band = row.get("band")
            if band is not None:
                ax.fill_betweenx([y - 0.32, y + 0.32], 100 * band[0], 100 * band[1], color="#56B4E9", alpha=0.35,
                                 lw=0, label="claimed band")
            colour = VERDICT_COLOURS.get(row.get("verdict"), "0.15")
            if not _finite(row.get("estimate")):
                ax.annotate("no estimate", (0, y), ha="center", va="center", fontsize=9, color="0.4")
                continue
            for ci, width in ((row.get("ci"), 1.2), (row.get("ci_verdict"), 4.0)):
                if ci and _finite(ci[0]) and _finite(ci[1]):
                    ax.plot([100 * ci[0], 100 * ci[1]], [y, y], color=colour, lw=width, solid_capstyle="butt")
            ax.plot(100 * row["estimate"], y, "o", color=colour, ms=8, markeredgecolor="black", mew=0.6, zorder=4)
            text = f"{100 * row['estimate']:+.1f} %"
            if row.get("verdict"):
                text += f"  {row['verdict']}" + (f" ({row['direction']})" if row.get("direction") else "")
            ax.annotate(text, (100 * row["estimate"], y), xytext=(0, 10), textcoords="offset points", ha="center",
                        fontsize=9, color=colour, fontweight="bold" if row.get("verdict") else "normal",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85}, zorder=5)
        groups = [r.get("group") for _, r in placed]
        for y in range(1, len(groups)):
            if groups[y] != groups[y - 1]:
                ax.axhline(y - 0.5, color="0.3", lw=0.8)
        ax.axvline(0, color="black", lw=0.9, ls="--")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([r["label"] for _, r in placed])
        ax.set_ylim(-0.7, len(rows) - 0.2)
        ax.margins(x=0.12)
        ax.set_xlabel(f"change vs baseline (%, relative)   thick: {level_verdict:.0f} % CI (verdict), "
                      f"thin: {level:.0f} % CI")
        ax.set_title("Effect of each variant vs the baseline")
        handles, labels = ax.get_legend_handles_labels()
        if "claimed band" in labels:
            ax.legend([handles[labels.index("claimed band")]], ["claimed band"], loc="lower left", fontsize=9)
        fig.tight_layout()
    return fig, ax


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(x)


def tradeoff(points: pd.DataFrame, baseline: str | None = None):
    """Accuracy vs throughput: mIoU mean ± sd over seeds against fps median with its IQR over rounds.

    ``points``: one row per variant with ``variant, miou_mean, miou_sd, fps_median, fps_q25, fps_q75``.
    """
    colours = variant_colours(points["variant"])
    markers = dict(zip(points["variant"], "osD^vP*X"))
    with _style():
        fig, ax = plt.subplots(figsize=(7.2, 5.0))
        for _, p in points.iterrows():
            xerr = [[p["fps_median"] - p["fps_q25"]], [p["fps_q75"] - p["fps_median"]]]
            yerr = [[100 * _zero_if_nan(p["miou_sd"])]] * 2
            ax.errorbar(p["fps_median"], 100 * p["miou_mean"], xerr=xerr, yerr=yerr, fmt=markers[p["variant"]], ms=9,
                        color=colours[p["variant"]], ecolor=colours[p["variant"]], elinewidth=1.6, capsize=4,
                        markeredgecolor="black", mew=0.6,
                        label=p["variant"] + (" (baseline)" if p["variant"] == baseline else ""))
        ax.set_xlabel("throughput (images/s, median; bars = IQR over latency rounds)")
        ax.set_ylabel("test mIoU (%, mean; bars = ±1 sd over seeds)")
        ax.set_title("Accuracy vs speed: up and to the right is better")
        ax.margins(x=0.18, y=0.18)
        ax.legend(fontsize=9, loc="best")
        fig.tight_layout()
    return fig, ax


def _zero_if_nan(x) -> float:
    return 0.0 if x is None or not np.isfinite(x) else float(x)


# --- per class ---------------------------------------------------------------------------------


def class_iou_heatmap(class_iou: pd.DataFrame):
    """Mean IoU (%) per variant (rows) and class (columns), annotated."""
    with _style():
        fig, ax = plt.subplots(figsize=(1.0 + 0.85 * class_iou.shape[1], 1.4 + 0.6 * class_iou.shape[0]))
        # Colour over the observed range: differences of a few points are the point of the figure.
        values = 100 * class_iou.to_numpy(dtype=float)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        low, high = (low - 1, high + 1) if high - low < 2 else (low, high)
        sns.heatmap(100 * class_iou, annot=True, fmt=".0f", cmap="viridis", vmin=low, vmax=high, ax=ax,
                    cbar_kws={"label": "IoU (%)"}, linewidths=0.5, annot_kws={"fontsize": 9})
        ax.set_xlabel("class")
        ax.set_ylabel("variant")
        ax.set_title("Per-class test IoU (%), mean over seeds")
        ax.tick_params(axis="x", rotation=40)
        plt.setp(ax.get_xticklabels(), ha="right")
        fig.tight_layout()
    return fig, ax


def class_delta_heatmap(class_delta: pd.DataFrame, baseline: str):
    """Per-class IoU change vs the baseline in points (variant − baseline), diverging around 0."""
    limit = float(np.nanmax(np.abs(100 * class_delta.to_numpy()))) if class_delta.size else 1.0
    limit = limit if np.isfinite(limit) and limit > 0 else 1.0
    with _style():
        fig, ax = plt.subplots(figsize=(1.0 + 0.85 * class_delta.shape[1], 1.4 + 0.6 * class_delta.shape[0]))
        sns.heatmap(100 * class_delta, annot=True, fmt="+.1f", cmap="vlag", center=0, vmin=-limit, vmax=limit,
                    ax=ax, cbar_kws={"label": "IoU change (points)"}, linewidths=0.5, annot_kws={"fontsize": 9})
        ax.set_xlabel("class")
        ax.set_ylabel("variant")
        ax.set_title(f"Per-class IoU change vs {baseline} (points, mean over seeds)")
        ax.tick_params(axis="x", rotation=40)
        plt.setp(ax.get_xticklabels(), ha="right")
        fig.tight_layout()
    return fig, ax


# --- training ----------------------------------------------------------------------------------


def learning_curves(epochs: pd.DataFrame, order: list[str]):
    """Validation mIoU by epoch per variant: mean over seeds with a ±1 sd band."""
    colours = variant_colours(order)
    with _style():
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for variant in order:
            rows = epochs[epochs["variant"] == variant]
            if rows.empty:
                continue
            stats = rows.groupby("epoch")["val_miou"].agg(["mean", "std", "count"]).sort_index()
            mean, sd = 100 * stats["mean"], 100 * stats["std"].fillna(0)
            n_runs = rows["run_id"].nunique() if "run_id" in rows else int(stats["count"].max())
            ax.plot(stats.index, mean, color=colours[variant], lw=2, marker="o", ms=3.5,
                    label=f"{variant} (n={n_runs})")
            ax.fill_between(stats.index, mean - sd, mean + sd, color=colours[variant], alpha=0.18, lw=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation mIoU (%)")
        ax.set_title("Learning curves (mean ± 1 sd over seeds)")
        ax.legend(fontsize=9, loc="lower right")
        fig.tight_layout()
    return fig, ax


# --- Optuna ------------------------------------------------------------------------------------


def optuna_history(study, variant: str):
    """Objective per completed trial and the best-so-far line."""
    import optuna

    trials = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    values = np.array([t.value for t in trials], dtype=float)
    numbers = np.array([t.number for t in trials])
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)
    scale = 100.0 if np.nanmax(np.abs(values)) <= 1.0 else 1.0  # mIoU objectives as %
    with _style():
        fig, ax = plt.subplots(figsize=(7.0, 4.4))
        ax.scatter(numbers, scale * values, s=28, color=sns.color_palette("colorblind")[0],
                   edgecolor="black", linewidth=0.4, label="trial", zorder=3)
        ax.step(numbers, scale * best, where="post", color=sns.color_palette("colorblind")[1], lw=2,
                label="best so far")
        pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.get_trials(deepcopy=False))
        ax.set_xlabel("trial")
        ax.set_ylabel("objective: validation mIoU (%)" if scale == 100 else "objective")
        ax.set_title(f"Optuna history: {variant} ({len(trials)} complete, {pruned} pruned)")
        ax.legend(fontsize=9)
        fig.tight_layout()
    return fig, ax


def param_importance(study, variant: str, seed: int = 0):
    """Importance of each tuned setting: fANOVA (seeded) when scikit-learn is there, else PED-ANOVA.

    PED-ANOVA needs no scikit-learn and is deterministic, so the report is reproducible either way.
    """
    from optuna.importance import get_param_importances

    evaluator, method = _importance_evaluator(seed)
    with warnings.catch_warnings():  # PED-ANOVA warns on tiny studies; the plot says how many trials
        warnings.simplefilter("ignore")
        importances = get_param_importances(study, evaluator=evaluator)
    if not importances:
        raise ValueError("no tuned parameters with spread")
    names = list(importances)[::-1]
    values = [float(importances[n]) for n in names]
    with _style():
        fig, ax = plt.subplots(figsize=(7.0, 1.6 + 0.45 * len(names)))
        ax.barh(names, values, color=sns.color_palette("colorblind")[2], edgecolor="black", lw=0.5)
        for y, v in enumerate(values):
            ax.annotate(f"{v:.2f}", (v, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
        ax.set_xlim(0, max(values) * 1.18 + 1e-9)
        ax.set_xlabel(f"importance ({method}; shares sum to 1)")
        ax.set_title(f"Hyperparameter importance: {variant}")
        fig.tight_layout()
    return fig, ax


def _importance_evaluator(seed: int):
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    try:
        import sklearn  # noqa: F401 - fANOVA's dependency

        return FanovaImportanceEvaluator(seed=seed), "fANOVA"
    except ImportError:
        return PedAnovaImportanceEvaluator(), "PED-ANOVA"


# --- power -------------------------------------------------------------------------------------


def power_curves(curves: list[dict], *, target: float = 0.8):
    """Power vs number of paired seeds, one line per claim, with the current n marked.

    ``curves``: dicts with ``label``, ``n`` (list of seed counts), ``power`` (same length)
    and ``current_n``. The x range stops a little after every curve has reached 99 %.
    """
    palette = sns.color_palette("colorblind", max(len(curves), 1))
    x_max = _power_x_max(curves)
    with _style():
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for colour, marker, curve in zip(palette, "osD^vP*X" * 4, curves):
            n, power = np.asarray(curve["n"], dtype=int), np.asarray(curve["power"], dtype=float)
            keep = n <= x_max
            ax.plot(n[keep], power[keep], color=colour, lw=2, marker=marker, ms=4, label=curve["label"])
            current = curve.get("current_n")
            if current is not None and current in set(n.tolist()):
                p_now = float(power[n.tolist().index(current)])
                ax.plot(current, p_now, marker, color=colour, ms=11, markeredgecolor="black", mew=0.8, zorder=4)
        currents = sorted({c.get("current_n") for c in curves if c.get("current_n")})
        for current in currents:
            ax.axvline(current, color="0.4", lw=0.8, ls=":")
            ax.annotate(f"this study: n={current}", (current, 0.03), xytext=(4, 0), textcoords="offset points",
                        fontsize=9, color="0.3")
        ax.axhline(target, color="black", ls="--", lw=0.9)
        ax.annotate(f"{target:.0%} power", (2, target), xytext=(2, 3), textcoords="offset points", fontsize=9)
        ax.set_ylim(0, 1.03)
        ax.set_xlim(1.5, x_max + 0.5)
        ax.set_xlabel("paired seeds per variant")
        ax.set_ylabel("power (one-sided paired t)")
        ax.set_title("Power to detect the smallest claimed effect vs seeds")
        ax.legend(fontsize=8.5, loc="lower right")
        fig.tight_layout()
    return fig, ax


def _power_x_max(curves: list[dict]) -> int:
    x_max = max([10, *[2 * (c.get("current_n") or 0) for c in curves]])
    for curve in curves:
        reached = [n for n, p in zip(curve["n"], curve["power"]) if p is not None and p >= 0.99]
        x_max = max(x_max, (reached[0] + 2) if reached else max(curve["n"]))
    return int(min(x_max, max(max(c["n"]) for c in curves)))


def guarded(make: Callable[[], tuple], out_dir: Path, name: str, warnings: list[str]) -> dict | None:
    """Run one plot function and save it; a failure becomes a warning instead of a crash."""
    try:
        fig, _ = make()
        return save(fig, out_dir, name)
    except Exception as exc:  # noqa: BLE001 - one broken figure must not cost the whole report
        plt.close("all")
        warnings.append(f"plot {name} skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None
