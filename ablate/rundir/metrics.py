"""The one metric table: every metric a claim may test, where its values come from, and how its effects print.

Claim validation (``ablate.study``), the estimators, the verdict wording, the report and the plots all read
this table; adding a metric is one entry in ``METRICS`` (plus the column the engine writes). Per-class IoU
is a pattern, ``iou_<class>``, since the classes come from the dataset. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RESULTS = "results"  # a results.csv column: one value per seed run (the unit of replication: seeds)
LATENCY = "latency"  # from latency.csv's timed rounds: one value per launch (the unit: launches)
CLASS_PREFIX = "iou_"
CLASS_PATTERN = "iou_<class>"  # how the per-class metrics are listed among the valid choices


@dataclass(frozen=True)
class Metric:
    name: str
    label: str                    # how sentences and axes name it
    source: str = RESULTS         # RESULTS or LATENCY
    unit: str = "pts"             # the unit an absolute effect prints in
    scale: float = 100.0          # absolute value x scale = value in ``unit`` (fractions print as points)
    digits: int = 2               # decimals of an absolute effect in ``unit``
    higher_is_better: bool = True
    from_confusions: bool = False  # computable per test image from the confusions: seeds x images estimate

    @property
    def is_fraction(self) -> bool:
        return self.scale == 100.0 and self.unit == "pts"


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("miou", "mIoU", from_confusions=True),
    Metric("pixel_acc", "pixel accuracy"),
    Metric("mean_acc", "mean accuracy"),
    Metric("fwiou", "fwIoU"),
    Metric("mean_dice", "mean Dice"),
    Metric("fps", "speed", source=LATENCY, unit="img/s", scale=1.0, digits=1),
)}


def find_metric(name: str) -> Metric | None:
    """The table's entry for ``name`` (``iou_<class>`` for any class), or None for a name it does not know."""
    name = str(name)
    if name in METRICS:
        return METRICS[name]
    if name.startswith(CLASS_PREFIX) and len(name) > len(CLASS_PREFIX):
        return Metric(name, f"IoU of {name[len(CLASS_PREFIX):]}")
    return None


def metric(name: str) -> Metric:
    """``find_metric`` for a name already validated; raises KeyError naming the valid choices otherwise."""
    found = find_metric(name)
    if found is None:
        raise KeyError(f"unknown metric {name!r}; valid: {', '.join(claimable_metrics())}")
    return found


def is_latency(name: str) -> bool:
    found = find_metric(name)
    return found is not None and found.source == LATENCY


def result_metrics() -> list[str]:
    """The results.csv metric columns every run writes (per-class IoU aside)."""
    return [m.name for m in METRICS.values() if m.source == RESULTS]


def claimable_metrics(class_columns=None) -> list[str]:
    """What a claim may test: the table's metrics and the per-class IoU columns (``class_columns``; the
    pattern ``iou_<class>`` when the classes are not known)."""
    classes = [CLASS_PATTERN] if class_columns is None else list(class_columns)
    return [*METRICS, *classes]


# --------------------------------------------------------------------------- how an effect prints


def _shown(name: str) -> Metric:
    # a name outside the table (a simulation's made-up metric) prints as a plain number, never fails a sentence
    return find_metric(name) or Metric(str(name), str(name), unit="", scale=1.0, digits=3)


def _number(x: float, m: Metric, relative: bool, signed: bool) -> str:
    sign = "+" if signed else ""
    if relative:
        return f"{100 * x:{sign}.1f}"
    return f"{m.scale * x:{sign}.{m.digits}f}"


def effect_unit(name: str, relative: bool) -> str:
    """'%' for a relative effect, else the metric's unit ('pts', 'img/s')."""
    return "%" if relative else _shown(name).unit


def format_effect(x, name: str, *, relative: bool, ci=None, test_scale: bool = False, signed: bool = True) -> str:
    """One effect in its claim's unit, with its interval when given: '+7.3 % [-0.3, +15.5]', '+1.09 pts'.

    ``x`` and ``ci`` are on the claim's scale (a relative effect as ratio - 1), or with ``test_scale`` on the
    estimators' scale (a relative effect as log ratio). '—' when ``x`` is not a finite number.
    """
    def claim_scale(v):
        return math.expm1(v) if test_scale and relative else v

    if not _finite(x):
        return "—"
    m = _shown(name)
    text = f"{_number(claim_scale(x), m, relative, signed)} {effect_unit(name, relative)}".rstrip()
    if ci is not None and len(ci) == 2 and all(_finite(v) for v in ci):
        lo, hi = (_number(claim_scale(v), m, relative, True) for v in ci)
        text += f" [{lo}, {hi}]"
    return text


def format_interval(ci, name: str, *, relative: bool, test_scale: bool = False) -> str:
    """An interval alone in its claim's unit: '[-0.3, +15.5] %' ('—' unless both ends are finite)."""
    if ci is None or len(ci) != 2 or not all(_finite(v) for v in ci):
        return "—"
    lo, hi = (_number(math.expm1(v) if test_scale and relative else v, _shown(name), relative, True) for v in ci)
    return f"[{lo}, {hi}] {effect_unit(name, relative)}".rstrip()


def format_band(band, name: str, *, relative: bool) -> str:
    """A claim's band in its unit: '+2..+12 %', '+1..+3 pts', '-25..-15 %'."""
    m = _shown(name)
    scale = 100.0 if relative else m.scale
    lo, hi = (f"{scale * float(v):+g}" for v in band)
    return f"{lo}..{hi} {effect_unit(name, relative)}".rstrip()


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
