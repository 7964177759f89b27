"""Per-launch throughput ratios from latency.csv rows (torch-free: the bench prints them, analysis may reuse them).

A launch is the unit of a speed comparison (rounds are nested in launches). Within one launch
the paired quantity is the mean over rounds of ``log(baseline ms / variant ms)`` (rounds paired
by index: both models were timed in the same round); a launch's throughput ratio is its exp.
Across launches the summary here is the geometric mean; the interval and the test that claims
use are analysis's (t on these per-launch log ratios).
"""

from __future__ import annotations

import math
from collections import defaultdict

#: The one latency-setting rule: rows differing in any of these columns are different settings (analysis.run_reader
#: groups latency.csv by the same columns; a thread count changes the speed as much as the batch does).
LATENCY_SETTING_COLUMNS = ("device", "threads", "dtype", "mode", "batch", "height", "width")
MODES = ("eager", "compiled", "graph")  # latency.csv "mode"; the study validator reads it here (no torch)


def setting_of(row: dict) -> dict:
    """The latency setting a row belongs to (``LATENCY_SETTING_COLUMNS``); rows written before launches/modes
    read as eager, launch 0; a column the table lacks is ``None``."""
    return {"device": row.get("device", ""), "threads": _whole_or_none(row.get("threads")), "dtype": row["dtype"],
            "mode": row.get("mode") or "eager", "batch": int(row["batch"]), "height": int(row["height"]),
            "width": int(row["width"])}


def paired_rounds(rows: list[dict], variant: str, baseline: str) -> dict[int, list[tuple[float, float]]]:
    """``{launch: [(baseline ms, variant ms) per round both models were timed in]}``, rows of ONE setting.

    Rows without a usable time (missing, NaN, <= 0) are left out; a model timed twice in one round
    counts with its mean. Rows written before launches existed read as launch 0.
    """
    times: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["variant"] in (variant, baseline):
            ms = _number(r.get("ms_per_image"))
            if ms > 0:  # False for NaN
                times[(_whole(r.get("launch")), _whole(r["round"]))][r["variant"]].append(ms)
    out: dict = defaultdict(list)
    for (launch, _), pair in sorted(times.items()):
        if variant in pair and baseline in pair:
            out[launch].append((sum(pair[baseline]) / len(pair[baseline]), sum(pair[variant]) / len(pair[variant])))
    return dict(out)


def per_launch_log_ratios(rows: list[dict], variant: str, baseline: str) -> dict[int, float]:
    """``{launch: mean over paired rounds of log(baseline ms / variant ms)}`` for rows of ONE setting.

    > 0 means the variant is faster than the baseline. Launches where either model has no round are left out.
    """
    return {launch: sum(math.log(b / v) for b, v in pairs) / len(pairs)
            for launch, pairs in paired_rounds(rows, variant, baseline).items()}


def _number(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _whole_or_none(x) -> int | None:
    x = _number(x)
    return int(x) if x == x else None


def _whole(x) -> int:
    """An int from a CSV/pandas cell; missing or NaN (older tables) is 0."""
    x = _number(x)
    return int(x) if x == x else 0


def launch_ratio_table(rows: list[dict], baseline: str) -> list[dict]:
    """Per (setting, variant): median ms/image, per-launch throughput ratios vs ``baseline`` and their geometric mean."""
    groups: dict = defaultdict(list)
    for r in rows:
        groups[tuple(setting_of(r).items())].append(r)
    out = []
    for key, group in groups.items():
        setting = dict(key)
        for variant in sorted({r["variant"] for r in group}, key=lambda v: (v != baseline, v)):
            ms = sorted(float(r["ms_per_image"]) for r in group if r["variant"] == variant)
            logs = per_launch_log_ratios(group, variant, baseline) if variant != baseline else {}
            per_launch = {k: math.exp(v) for k, v in logs.items()}
            geo = math.exp(sum(logs.values()) / len(logs)) if logs else (1.0 if variant == baseline else math.nan)
            out.append({"variant": variant, **setting, "setting": setting, "rounds": len(ms), "launches": len(logs),
                        "ms_median": _median(ms), "fps": 1000.0 / _median(ms) if ms else math.nan,
                        "ratio_per_launch": per_launch, "ratio_geomean": geo})
    return out


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    if not n:
        return math.nan
    mid = n // 2
    return sorted_values[mid] if n % 2 else 0.5 * (sorted_values[mid - 1] + sorted_values[mid])
