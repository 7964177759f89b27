"""Shared look of every figure: one colour per variant, verdict colours, legend placement.

Variants get the Okabe–Ito palette (safe for the common colour-vision deficiencies) in the
study's variant order, so one variant keeps one colour in every figure; past eight
variants, distinct hues are spaced around the colour wheel (never a repeat).
"""

from __future__ import annotations

import colorsys
import contextlib
import warnings
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

# Okabe & Ito (2008), ordered so the first four (the usual ladder) are the most distinct; yellow late.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
# past eight: tab10's colours that are not near an Okabe-Ito one, then spaced hues
MORE = ("#8C564B", "#7F7F7F", "#BCBD22", "#393B79", "#17BECF", "#AD494A")
MARKERS = "osD^vP*Xhp<>"
VERDICT_COLOURS = {"supported": "#009E73", "refuted": "#D55E00", "inconclusive": "#6b6b6b"}
BAND_COLOUR = "#56B4E9"


def variant_colours(variants: Iterable[str]) -> dict[str, str]:
    """``variant -> colour`` in the given order; every variant a different colour."""
    variants = list(dict.fromkeys(variants))
    palette = list(OKABE_ITO + MORE)
    extra = max(len(variants) - len(palette), 0)
    palette += [matplotlib.colors.to_hex(colorsys.hls_to_rgb(i / extra, 0.4, 0.6)) for i in range(extra)]
    return {v: palette[i] for i, v in enumerate(variants)}


def variant_markers(variants: Iterable[str]) -> dict[str, str]:
    return {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(dict.fromkeys(variants))}


@contextlib.contextmanager
def style():
    """A local style (never changes a caller's matplotlib defaults)."""
    with plt.rc_context({
        "figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold", "axes.titlesize": 11.5,
        "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
        "axes.grid": True, "grid.color": "#e3e3e3", "grid.linewidth": 0.8, "axes.axisbelow": True,
        "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#444444",
    }):
        with warnings.catch_warnings():
            # seaborn 0.13's heatmap calls a colormap method matplotlib 3.11 marks as pending removal
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            yield


def new_axes(ax, figsize: tuple[float, float]):
    """``ax`` itself, or the Axes of a new figure of ``figsize``."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def legend_outside(ax, *, below: bool = False, **kwargs):
    """A legend right of the axes (or under the x label, for long labels), where it can never cover data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if below:
        return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, -0.16), borderaxespad=0.0,
                         frameon=False, ncol=1, **kwargs)
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                     frameon=False, **kwargs)
