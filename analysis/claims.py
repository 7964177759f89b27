"""Claims a study makes, and their verdicts.

``Claim`` is pure data (no torch) so study files, ``study.json`` and
``ablate analyze --claim`` all share it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
