"""The effect of each claim with its intervals and the claimed band, one panel per claim.

Each claim is drawn in its own unit on its own x scale: a +2..+3 % mIoU band and a
−25..−15 % speed band never share an axis. When the interval is much wider than the band,
the band is magnified on a piecewise-linear axis (ticks keep the true values and the panel
says by how much), so a narrow band stays readable instead of a sliver.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import AutoLocator, FixedLocator, FuncFormatter

from analysis.plots.style import BAND_COLOUR, VERDICT_COLOURS, new_axes, style
from analysis.report.text import claims_in_order, finite, interval, posterior_text

BAND_SHARE = 0.22  # the smallest share of a panel's width the band gets


def plot_forest(rows: list[dict], *, level: float = 0.90, wide_level: float | None = 0.95, ax=None):
    """One panel per row (``ax`` is the frame that holds them; returns it).

    ``rows``: dicts with ``label``, ``unit`` (axis text), ``scale`` (multiplier to that unit),
    ``estimate``, ``ci`` (the verdict's interval, at ``level``) and/or ``ci_wide`` (at
    ``wide_level``), ``band`` [lo, hi], ``verdict``, ``direction``, ``note`` (text under the panel).
    The panels are ``ax.child_axes`` in row order.
    """
    n = max(len(rows), 1)
    with style():
        ax = new_axes(ax, (8.6, 1.95 * n))
        ax.set_axis_off()
        for i, row in enumerate(rows):  # each row's slot: title, panel, then ticks and two lines of labels
            slot = 1 / n
            panel = ax.inset_axes([0, 1 - (i + 1) * slot + 0.38 * slot, 1, 0.47 * slot])
            _panel(panel, row, level, wide_level)
        if not rows:
            ax.text(0.5, 0.5, "no claims or comparisons to show", ha="center", va="center", transform=ax.transAxes)
    return ax


def _panel(ax, row: dict, level: float, wide_level: float | None) -> None:
    scale = row.get("scale", 1.0)
    band = [scale * b for b in row["band"]] if row.get("band") else None
    ci = _scaled(row.get("ci"), scale)
    ci_wide = _scaled(row.get("ci_wide"), scale)
    estimate = scale * row["estimate"] if _finite(row.get("estimate")) else None
    colour = VERDICT_COLOURS.get(row.get("verdict"), "0.2")
    values = [0.0, *(band or []), *(ci or []), *(ci_wide or []), *([estimate] if estimate is not None else [])]
    x_min, x_max = min(values), max(values)
    pad = 0.07 * (x_max - x_min) if x_max > x_min else 1.0
    x_min, x_max = x_min - pad, x_max + pad
    magnified = _magnify_band(ax, band, x_min, x_max) if band else 1.0
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.grid(axis="y", visible=False)
    if band:
        ax.axvspan(*band, color=BAND_COLOUR, alpha=0.35, lw=0, zorder=1)
        for edge in band:
            ax.axvline(edge, color="#2171b5", lw=1.2, zorder=2)
        text = "claimed band" + (f" (magnified ×{magnified:.0f})" if magnified > 1.5 else "")
        ax.text(sum(band) / 2, 0.93, text, ha="center", va="top", fontsize=8, color="#08519c",
                transform=ax.get_xaxis_transform(), zorder=6)
    ax.axvline(0, color="black", lw=0.9, ls="--", zorder=2)
    if estimate is None:
        ax.text(0.5, 0.0, row.get("note") or "no estimate", ha="center", va="center", transform=ax.transAxes,
                color="0.35", fontsize=9)
    else:
        if ci_wide:
            ax.plot(ci_wide, [0, 0], color=colour, lw=1.3, zorder=3, solid_capstyle="butt")
        if ci:
            ax.plot(ci, [0, 0], color=colour, lw=6, zorder=4, solid_capstyle="butt", alpha=0.9)
        ax.plot(estimate, 0, "o", color="white", ms=9, markeredgecolor=colour, mew=2.2, zorder=5)
    ax.set_title(row["label"], loc="left", fontsize=10, fontweight="bold")
    if row.get("verdict"):
        verdict = row["verdict"] + (f" ({row['direction']})" if row.get("direction") else "")
        ax.set_title(verdict, loc="right", fontsize=10, color=colour, fontweight="bold")
    bars = ", ".join([*([f"thick: {100 * level:g} % CI (verdict)"] if ci else []),
                      *([f"thin: {100 * wide_level:g} % CI"] if ci_wide and wide_level else [])])
    note = row.get("note") if estimate is not None and row.get("note") else ""
    ax.set_xlabel(f"{row.get('unit', '')}    {bars}, dashed: no change" + (f"\n{note}" if note else ""),
                  fontsize=8.5, color="0.25")


def _magnify_band(ax, band, x_min: float, x_max: float) -> float:
    """Give the band at least BAND_SHARE of the width; returns the magnification (1 = none)."""
    lo, hi = band
    width, span = hi - lo, x_max - x_min
    outside = span - width
    if width <= 0 or outside <= 0 or width / span >= BAND_SHARE:
        ax.xaxis.set_major_formatter(FuncFormatter(_tick))
        return 1.0
    k = BAND_SHARE * outside / ((1 - BAND_SHARE) * width)

    def forward(x):
        x = np.asarray(x, dtype=float)
        return np.where(x < lo, x - lo, np.where(x > hi, x - hi + k * width, k * (x - lo)))

    def inverse(y):
        y = np.asarray(y, dtype=float)
        return np.where(y < 0, y + lo, np.where(y > k * width, y - k * width + hi, lo + y / k))

    ax.set_xscale("function", functions=(forward, inverse))
    display = float(forward(x_max) - forward(x_min)) or 1.0

    def clear_of(t, taken, room):
        return all(abs(float(forward(t) - forward(u))) / display > room for u in taken)

    ticks = [lo, hi]
    if x_min <= 0 <= x_max and clear_of(0.0, ticks, 0.04):
        ticks.append(0.0)  # the no-effect line keeps its label
    for t in AutoLocator().tick_values(x_min, x_max):
        if x_min <= t <= x_max and clear_of(t, ticks, 0.06):
            ticks.append(float(t))
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    return k


def _tick(value, _pos=None) -> str:
    if abs(value) < 1e-12:
        return "0"
    return f"{value:+.3g}".replace("-", "\u2212")


def _scaled(ci, scale):
    if not ci or len(ci) != 2 or not all(_finite(c) for c in ci):
        return None
    return [scale * ci[0], scale * ci[1]]


def _finite(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def band_share(panel) -> float:
    """Share of a panel's drawn width taken by its band (the check behind the fault-10 fix)."""
    spans = [p for p in panel.patches if p.get_facecolor()[:3] == _rgb(BAND_COLOUR)]
    if not spans:
        return 0.0
    x0, x1 = spans[0].get_path().get_extents(spans[0].get_transform()).intervalx
    a0, a1 = panel.get_window_extent().intervalx
    return (x1 - x0) / (a1 - a0)


def _rgb(colour):
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


# --------------------------------------------------------------------------- in the report

PLACEMENT = "headline"
NO_CLAIM_CAPTION = ("No claim was stated: each variant's test-mIoU change relative to the baseline, with its interval "
                    "over seeds × test images (the verdicts' estimator): a reading, not a verdict.")
CAPTION = ("Each claim's effect in its own unit: the thick bar is the interval the verdict uses, the shaded "
           "box the claimed band (magnified when the interval is much wider, as the panel says).")


def forest_rows(verdicts: dict) -> list[dict]:
    """One row per claim in its own unit, then the mIoU change of each variant no claim covers."""
    from ablate.rundir.metrics import metric as metric_entry

    rows, claimed = [], set()
    for claim in claims_in_order(verdicts):
        relative, metric = claim.get("relative"), claim.get("metric")
        m = metric_entry(metric)
        unit, scale = ("change vs baseline (%)", 100.0) if relative else (
            f"change vs baseline ({m.label}, {'points' if m.is_fraction else m.unit})", m.scale)
        post = posterior_text(claim)
        note = f"P(below / inside / above band) = {post}" if post != "—" else ""
        rows.append({"label": f"{claim['claim']}   (n = {claim.get('n') or 0} {claim.get('n_unit') or ''})".replace(" )", ")"), "unit": unit, "scale": scale,
                     "estimate": claim.get("estimate"), "ci": interval(claim.get("ci")),
                     "ci_wide": interval(claim.get("ci_refute")), "band": claim.get("band"),
                     "verdict": claim.get("verdict"), "direction": claim.get("direction"),
                     "note": note or (None if finite(claim.get("estimate")) else claim.get("reason"))})
        claimed.add((claim["variant"], metric))
    # variants no claim covers: analyze's estimator (seeds x images from the test-set section; without
    # confusions it is seeds only, as the claims' own fallback, which is the comparisons' t interval)
    two_way = ((verdicts.get("test_set") or {}).get("paired_vs_baseline")) or {}
    for comp in verdicts.get("comparisons") or []:
        variant = comp["variant"]
        if (variant, "miou") in claimed:
            continue
        est = two_way.get(variant) or {}
        estimate, ci, n = ((est["rel_delta"], est.get("rel_ci"), len(est.get("seeds") or []))
                           if finite(est.get("rel_delta")) else (comp.get("rel_diff"), comp.get("rel_ci"), comp.get("n") or 0))
        if not finite(estimate):
            continue
        rows.append({"label": f"{variant} miou, no claim   (n = {n} seeds)", "unit": "change vs baseline (%)",
                     "scale": 100.0, "estimate": estimate, "ci_wide": interval(ci)})
    return rows


def figures(inputs) -> list:
    from analysis.plots.figure import Figure

    v = inputs.verdicts
    rows = forest_rows(v)
    level = 1 - 2 * v["alpha"]
    caption = CAPTION if v.get("claims") else NO_CLAIM_CAPTION
    return [Figure("forest", lambda ax: plot_forest(rows, level=level, wide_level=1 - v["alpha"], ax=ax), caption,
                   PLACEMENT, None if any(finite(r.get("estimate")) for r in rows) else "no effect could be estimated")]
