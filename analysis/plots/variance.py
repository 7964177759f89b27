"""Where the uncertainty of each paired effect comes from: seeds (training) vs test images."""

from __future__ import annotations

from analysis.plots.style import legend_outside, new_axes, style

COMPONENT_COLOURS = {"seed": "#0072B2", "image": "#E69F00", "seed × image": "#CC79A7", "residual": "#bdbdbd"}


def plot_variance_components(rows: list[dict], *, unit: str = "points",
                             title: str = "Uncertainty of each effect: seeds vs test images", ax=None):
    """Stacked shares of the variance per row, each part labelled with its sd.

    ``rows``: dicts with ``label`` and ``sd`` {component: sd in ``unit``} (components as in
    COMPONENT_COLOURS or any other name).
    """
    with style():
        ax = new_axes(ax, (7.8, 0.9 + 0.55 * max(len(rows), 1)))
        labels = [r["label"] for r in rows][::-1]
        seen: set[str] = set()
        for y, row in enumerate(rows[::-1]):
            variances = {k: float(v) ** 2 for k, v in row["sd"].items() if v is not None}
            total = sum(variances.values()) or 1.0
            left = 0.0
            for name, var in variances.items():
                share = var / total
                ax.barh(y, share, left=left, color=COMPONENT_COLOURS.get(name, "0.6"), edgecolor="white",
                        label=None if name in seen else name, height=0.62)
                seen.add(name)
                if share > 0.12:
                    ax.text(left + share / 2, y, f"{share:.0%}\n{row['sd'][name]:.2g}", ha="center",
                            va="center", fontsize=8, color="white" if name != "residual" else "black")
                left += share
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_xlabel(f"share of the variance (labels: share, and the square root of the part in {unit})")
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
        legend_outside(ax)
    return ax


PLACEMENT = "figures"
CAPTION = ("Where the uncertainty of each paired mIoU effect comes from: training seeds, the finite test set, "
           "and their interaction (shares of the variance; sd of each part).")


def variance_rows(verdicts: dict) -> tuple[list[dict], str, str]:
    """(rows, unit, title) for the variance figure: the paired mIoU effect's variance components.

    verdicts.json's seed × image decomposition of each variant's paired effect (points of mIoU);
    an older verdicts.json has only each variant's raw mIoU spread (sd over seeds vs image se).
    """
    from analysis.report.text import finite

    test_set = verdicts.get("test_set") or {}
    rows = []
    for name, d in (test_set.get("paired_vs_baseline") or {}).items():
        parts = {"seed": d.get("var_seed"), "image": d.get("var_image"), "seed × image": d.get("var_interaction")}
        if all(finite(v) for v in parts.values()) and sum(parts.values()) > 0:
            rows.append({"label": f"{name} − {verdicts.get('baseline')} (n={len(d.get('seeds') or []) or '?'})",
                         "sd": {k: 100 * max(v, 0.0) ** 0.5 for k, v in parts.items()}})
    if rows:
        return rows, "mIoU points", "Paired mIoU effect: variance components (seeds, test images, interaction)"
    for name, t in (test_set.get("variants") or {}).items():
        seed_sd, image_sd = t.get("sd_over_seeds"), t.get("mean_image_se", t.get("mean_bootstrap_se"))
        if finite(seed_sd) and finite(image_sd) and (seed_sd > 0 or image_sd > 0):
            rows.append({"label": f"{name} (n={t.get('n_runs')})", "sd": {"seed": 100 * seed_sd,
                                                                          "image": 100 * image_sd}})
    return rows, "mIoU points", "Each variant's test mIoU: seeds vs test images"


def figures(inputs) -> list:
    from analysis.plots.figure import Figure

    components, unit, title = variance_rows(inputs.verdicts)
    return [Figure("variance", lambda ax: plot_variance_components(components, unit=unit, title=title, ax=ax),
                   CAPTION, PLACEMENT, None if components else "needs per-image confusion matrices of the seed runs")]
