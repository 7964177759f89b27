"""Chance that the verdict rule settles each claim, against the number of paired seeds."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, ScalarFormatter

from analysis.plots.style import MARKERS, OKABE_ITO, legend_outside, new_axes, style


def plot_power(curves: list[dict], *, target: float = 0.8, ax=None):
    """One colour per claim: P(supported) if the claim is true (band middle) solid, P(settled) (supported or
    refuted) if the effect is as estimated dashed when given, the quantities of the table's "n needed
    (supported / settled)".

    ``curves``: dicts with ``label``, ``n`` (unit counts), ``supported`` (or ``power``), optionally
    ``settled``, ``current_n``, ``seeds_needed`` and ``seeds_to_settle``. The x axis always reaches every
    ``seeds_needed`` and ``current_n`` it marks (log scale when that is far).
    """
    x_max = power_x_max(curves)
    units = list(dict.fromkeys(c.get("unit") or "seeds" for c in curves))
    with style():
        ax = new_axes(ax, (7.8, 4.6))
        for i, curve in enumerate(curves):
            colour, marker = OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]
            n = np.asarray(curve["n"], dtype=float)
            supported = _supported(curve)
            needed = curve.get("seeds_needed")
            name = f"{curve['label']} [{curve.get('unit')}]" if len(units) > 1 else curve["label"]
            label = f"{name}: P(supported) if true (band middle)" if curve.get("settled") is not None else name
            if isinstance(needed, (int, float)) and needed > 0:
                label += f" ({target:.0%} at n = {int(needed)})"
            elif "seeds_needed" in curve:
                label += f" ({target:.0%} out of reach)"
            ax.plot(n, np.asarray(supported, dtype=float), color=colour, lw=2, marker=marker, ms=3.5,
                    markevery=max(len(n) // 12, 1), label=label)
            if curve.get("settled") is not None:
                settle = curve.get("seeds_to_settle")
                ax.plot(n, np.asarray(curve["settled"], dtype=float), color=colour, lw=1.4, ls="--",
                        label=f"{name}: P(settled) if as estimated"
                              + (f" ({target:.0%} at n = {int(settle)})" if isinstance(settle, (int, float)) else ""))
                if isinstance(settle, (int, float)) and settle in set(n.astype(int).tolist()):
                    ax.plot(settle, target, "^", color=colour, ms=8, markeredgecolor="black", mew=0.6, zorder=5)
            current = curve.get("current_n")
            if current is not None and current in set(n.astype(int).tolist()):
                p_now = float(np.asarray(supported, dtype=float)[n.astype(int).tolist().index(current)])
                ax.plot(current, p_now, marker, color=colour, ms=11, markeredgecolor="black", mew=0.8, zorder=5)
            if isinstance(needed, (int, float)) and needed > 0:
                ax.plot(needed, target, "v", color=colour, ms=10, markeredgecolor="black", mew=0.6, zorder=5)
        ax.axhline(target, color="black", ls="--", lw=0.8)
        ax.text(1.01, target, f"{target:.0%}", transform=ax.get_yaxis_transform(), va="center", fontsize=8.5)
        ax.set_ylim(0, 1.03)
        if x_max > 60:
            ax.set_xscale("log")
            ax.set_xlim(1.8, x_max * 1.15)
            ax.xaxis.set_major_locator(FixedLocator([t for t in (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
                                                     if t <= x_max * 1.15]))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(ScalarFormatter())
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(1.5, x_max + 0.5)
        _mark_current(ax, sorted({c.get("current_n") for c in curves if c.get("current_n")}))
        ax.set_xlabel(f"paired {' / '.join(units)} per variant   (dotted: this study's n; ▼ / ▲ n needed for "
                      f"{target:.0%} supported / settled)")
        ax.set_ylabel("probability")
        ax.set_title("Chance the verdict rule settles each claim vs n", pad=16)
        legend_outside(ax, below=True)
    return ax


def _mark_current(ax, currents: list[int]) -> None:
    """Dotted line at each n of this study, labelled above the axes; close ones share one label."""
    groups: list[list[int]] = []
    width = ax.get_window_extent().width or 1.0
    for current in currents:
        ax.axvline(current, color="0.4", lw=0.8, ls=":")
        x = ax.transData.transform((current, 0))[0]
        if groups and x - ax.transData.transform((groups[-1][-1], 0))[0] < 0.07 * width:
            groups[-1].append(current)
        else:
            groups.append([current])
    for group in groups:
        ax.annotate("n=" + ", ".join(map(str, group)), (group[0], 1.0), xycoords=("data", "axes fraction"),
                    xytext=(0, 3), textcoords="offset points", ha="left" if len(group) > 1 else "center",
                    va="bottom", fontsize=8.5, color="0.3")


def power_x_max(curves: list[dict]) -> float:
    """The right end of the axis: past every marked n, and where the curves have flattened."""
    x_max = 10.0
    for curve in curves:
        for key in ("current_n", "seeds_needed", "seeds_to_settle"):
            if isinstance(curve.get(key), (int, float)):
                x_max = max(x_max, curve[key] + 2)
        supported = _supported(curve) or []
        reached = [n for n, p in zip(curve["n"], supported) if p is not None and p >= 0.95]
        x_max = max(x_max, min(reached[0] + 2, max(curve["n"])) if reached else max(curve["n"]))
    return x_max


def _supported(curve: dict):
    return curve["supported"] if curve.get("supported") is not None else curve.get("power")


PLACEMENT = "figures"
CAPTION = ("Chance the verdict rule settles each claim vs the number of paired seeds, at the band's midpoint; ▼ marks "
           "the seeds needed for 80 % (each curve runs past it, or to n = {max_n} when 80 % is out of reach).")


def power_rows(verdicts: dict) -> list[dict]:
    """verdicts.json's power curves, each with its claim's seeds needed when the claim has one."""
    from analysis.report.text import finite

    claims = {c["claim"]: c for c in verdicts.get("claims") or []}
    rows = []
    for curve in verdicts.get("power_curves") or []:
        claim = claims.get(curve.get("label") or curve.get("claim")) or {}
        needed = curve.get("seeds_needed", claim.get("seeds_needed"))
        rows.append({**curve, "label": curve.get("label") or curve.get("claim"),
                     "seeds_needed": needed if finite(needed) else None})
    return rows


def figures(inputs) -> list:
    from analysis.estimators.verdict_power import MAX_N
    from analysis.plots.figure import Figure

    curves = power_rows(inputs.verdicts)
    return [Figure("power", lambda ax: plot_power(curves, ax=ax), CAPTION.format(max_n=MAX_N), PLACEMENT,
                   None if curves else "no claim with a power curve")]
