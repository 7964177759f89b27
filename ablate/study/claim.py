"""Claims a study makes: the ``Claim`` record, its one parser and its one validator.

Pure data (no torch, no scipy) so study files, ``study.json`` and ``ablate analyze
--claim`` all share it; ``analysis`` turns claims into verdicts.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from ablate.errors import StudyError


@dataclass(frozen=True)
class Claim:
    """``variant``'s ``metric`` differs from the baseline's by an amount inside ``band``.

    ``relative=True``: the band bounds ``variant / baseline - 1`` (0.02 = +2 %);
    otherwise it bounds ``variant - baseline`` in the metric's own units (mIoU as
    a fraction). ``metric`` is ``"miou"``, ``"fps"`` (throughput from the latency
    table) or any numeric ``results.csv`` column. ``baseline=None`` means the
    study's baseline.
    """

    variant: str
    metric: str
    band: tuple[float, float]
    relative: bool = True
    baseline: str | None = None

    def __post_init__(self):
        # Every Claim is checked where it is made (a study file, study.json, --claim), so a band
        # that can never be judged (lo >= hi, infinite) fails at load, not hours later in analyze.
        try:
            lo, hi = (float(b) for b in self.band)
        except (TypeError, ValueError):
            raise ClaimError(f"claim on {self.variant} {self.metric}: band must be two numbers (lo, hi), "
                             f"got {self.band!r}") from None
        object.__setattr__(self, "band", (lo, hi))
        validate_claim(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["band"] = list(self.band)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Claim:
        return cls(
            variant=d["variant"],
            metric=d["metric"],
            band=(float(d["band"][0]), float(d["band"][1])),
            relative=bool(d.get("relative", True)),
            baseline=d.get("baseline"),
        )


# --------------------------------------------------------------------------- parsing


class ClaimError(StudyError):
    """A claim string or claim object that cannot be read."""


_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_CLAIM_RE = re.compile(
    rf"^\s*(?P<variant>\S+)\s+(?P<metric>\S+)\s+(?P<lo>{_NUM})\s*(?P<lp>%?)\s*(?:\.\.|…)\s*"
    rf"(?P<hi>{_NUM})\s*(?P<hp>%?)(?:\s+vs\.?\s+(?P<baseline>\S+))?\s*$"
)


def parse_claim(text: str) -> Claim:
    """Read ``"<variant> <metric> <lo>..<hi> [vs <baseline>]"`` into a :class:`Claim`.

    A ``%`` on the bounds makes the band relative (``"skip_fused miou +2%..+3%"`` → band (0.02, 0.03)
    of variant/baseline − 1); without it the band is absolute in the metric's units
    (``"progressive miou -0.01..0.01"``: mIoU as a fraction). Raises :class:`ClaimError` (a
    ``StudyError``) with a one-line message on anything else.
    """
    if isinstance(text, Claim):
        return text
    m = _CLAIM_RE.match(str(text))
    if not m:
        raise ClaimError(
            f"cannot read claim {text!r}: write '<variant> <metric> <lo>..<hi>', e.g. "
            "'skip_fused miou +2%..+3%' (relative) or 'progressive miou -0.01..0.01' (absolute)"
        )
    lp, hp = bool(m["lp"]), bool(m["hp"])
    if lp != hp:
        raise ClaimError(f"claim {text!r} mixes % and plain numbers: put % on both bounds or on neither")
    lo, hi = float(m["lo"]), float(m["hi"])
    if lp:
        lo, hi = lo / 100.0, hi / 100.0
    try:
        return Claim(m["variant"], m["metric"], (lo, hi), relative=lp, baseline=m["baseline"])
    except ClaimError as exc:
        raise ClaimError(f"{exc} (in {text!r})") from None


def validate_claim(claim: Claim, *, source: str | None = None) -> None:
    """Raise :class:`ClaimError` when the band is unusable (lo >= hi, non-finite, relative lo <= -100 %)."""
    what = source or format_claim(claim)
    lo, hi = claim.band
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ClaimError(f"claim {what}: band bounds must be finite numbers (got {lo}..{hi}); "
                         "write a wide finite band instead of an open one")
    if not lo < hi:
        raise ClaimError(f"claim {what}: the band's lower bound must be below its upper bound (got {lo}..{hi}); "
                         "a band needs a width to be tested")
    if claim.relative and lo <= -1:
        raise ClaimError(f"claim {what}: a relative band must stay above -100% (got {lo * 100:g}%)")


def _fmt_bound(x: float, relative: bool) -> str:
    return f"{x * 100:+g}%" if relative else f"{x:+g}"


def format_claim(claim: Claim) -> str:
    """The claim as the string ``parse_claim`` reads (``"skip_fused miou +2%..+3%"``)."""
    lo, hi = claim.band
    s = f"{claim.variant} {claim.metric} {_fmt_bound(lo, claim.relative)}..{_fmt_bound(hi, claim.relative)}"
    return s + (f" vs {claim.baseline}" if claim.baseline else "")


def as_claim(c) -> Claim:
    """A Claim from a Claim, a claim string or a ``Claim.to_dict()`` dict."""
    if isinstance(c, Claim):
        validate_claim(c)
        return c
    if isinstance(c, dict):
        try:
            claim = Claim.from_dict(c)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ClaimError(f"claim {c!r} is missing or has a bad field ({exc}): need variant, metric, band") from None
        validate_claim(claim)
        return claim
    return parse_claim(c)


def validate_claim_against(claim: Claim, *, variants, metrics) -> None:
    """``validate_claim`` plus: variant and baseline among ``variants``, metric among ``metrics``.

    ``metrics`` may hold a pattern entry ``"iou_<class>"``: then any ``iou_...`` metric passes.
    Raises :class:`ClaimError` naming the valid choices.
    """
    validate_claim(claim)
    what = format_claim(claim)
    variants = list(variants)
    for role, name in (("variant", claim.variant), ("baseline", claim.baseline)):
        if name is not None and name not in variants:
            raise ClaimError(f"claim {what}: unknown {role} {name!r}; valid: {', '.join(variants)}")
    metrics = list(metrics)
    from ablate.rundir.metrics import CLASS_PATTERN, CLASS_PREFIX

    any_iou = CLASS_PATTERN in metrics and str(claim.metric).startswith(CLASS_PREFIX)
    if claim.metric not in metrics and not any_iou:
        raise ClaimError(f"claim {what}: unknown metric {claim.metric!r}; valid: {', '.join(metrics)}")

