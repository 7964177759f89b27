"""Group-sequential verdicts for ``ablate run --until-settled``: look after every group of seeds, stop when settled.

Re-testing a fixed-n rule after every new seed inflates its errors (issue 9: 0.20 instead of 0.05 for
a true effect on the band edge, looks at 3..20 seeds). Here every look spends part of alpha
(Lan-DeMets alpha spending, O'Brien-Fleming-type by default, Pocock-type as an option) and the
boundaries come from the recursive numerical integration of Armitage, McPherson & Rowe (1969) on the
grid of Jennison & Turnbull (2000, ch. 19) -- the method of R's gsDesign / rpact.

The verdict at look k uses *repeated confidence intervals* (RCIs; Jennison & Turnbull ch. 9):

* ``supported`` iff mean ± c_k·se lies inside the band, c_k the one-sided level-alpha boundary:
  both one-sided tests of TOST cross their boundary at this look (intersection-union, level alpha);
* ``refuted`` iff mean ± r_k·se lies wholly outside the band, r_k the two-sided level-alpha
  (symmetric, alpha/2 a side) boundary: under any true effect inside the band the RCI misses it
  with probability <= alpha over all looks, so refuting is decided at level alpha as in issue 8;
* otherwise ``continue`` (``inconclusive`` at the last look).

Small n: the z boundaries are for a known sd, but seeds are few and their sd is estimated. The
significance-level conversion (Jennison & Turnbull sec. 3.8: keep 1 - Phi(c_k), take the t quantile
at df = n_k - 1; ``t_method="level"``) is measured slightly liberal here (0.053-0.057 for alpha 0.05,
looks from 3 seeds). By default (``t_method="calibrated"``) the t boundaries are instead set on a
simulated null t process, which is pivotal, so that each look spends exactly the spending function's
increment; ``tests/test_sequential.py`` checks both by simulation.

Information fractions are n_k / n_max (seeds). When the SE has a part that does not shrink with
seeds (test-set images, ``se_fixed``), the estimates still have independent increments and the true
information fractions are larger than n_k / n_max, which makes consecutive looks more correlated
than the boundaries assume: conservative (Slepian), never anti-conservative.

Everything is torch-free, pure numpy/scipy; the boundaries live in
``analysis.sequential.boundaries`` and the vectorised simulators (:func:`simulate_sequential`, a copy of
:func:`decide_sequence` for planning and the error-rate tests) in ``analysis.sequential.simulation``; both
are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

# re-exported: analysis.sequential is the public face of the sequential design
from analysis.sequential.boundaries import (  # noqa: F401
    SPENDING,
    T_METHODS,
    classical_constant,
    crossing_probabilities,
    spending,
    spending_bounds,
    t_bounds,
)
from analysis.sequential.simulation import (  # noqa: F401
    operating_characteristics,
    simulate_fixed_retest,
    simulate_hypothesis,
    simulate_sequential,
)


@dataclass(frozen=True)
class SequentialDesign:
    """Looks at ``looks`` paired seeds (the last is the most the study will train), alpha spent by ``spending``."""

    looks: tuple[int, ...]
    alpha: float = 0.05
    spending: str = "obf"
    t_method: str = "calibrated"

    def __post_init__(self):
        looks = tuple(int(n) for n in self.looks)
        if not looks or looks[0] < 2 or any(b <= a for a, b in zip(looks, looks[1:])):
            raise ValueError("looks must be increasing seed counts of at least 2 (one df for the sd)")
        if not 0 < self.alpha < 0.5:
            raise ValueError("alpha must be in (0, 0.5)")
        if self.spending not in SPENDING:
            raise ValueError(f"unknown spending function {self.spending!r}: use one of {', '.join(SPENDING)}")
        if self.t_method not in T_METHODS:
            raise ValueError(f"unknown t method {self.t_method!r}: use one of {', '.join(T_METHODS)}")
        object.__setattr__(self, "looks", looks)

    @classmethod
    def every(cls, *, max_seeds: int, look_every: int = 1, first_look: int = 3, **kwargs) -> SequentialDesign:
        """Looks at first_look, first_look + look_every, ... and always at ``max_seeds``."""
        if max_seeds < first_look:
            raise ValueError(f"max_seeds ({max_seeds}) must be at least the first look ({first_look})")
        looks = list(range(first_look, max_seeds + 1, max(1, int(look_every))))
        if looks[-1] != max_seeds:
            looks.append(max_seeds)
        return cls(tuple(looks), **kwargs)

    @property
    def fractions(self) -> np.ndarray:
        return np.asarray(self.looks, dtype=float) / self.looks[-1]

    @property
    def support_z(self) -> np.ndarray:
        """One-sided level-alpha z boundaries of each one-sided test of TOST."""
        return spending_bounds(self.fractions, alpha=self.alpha, kind=self.spending, sides=1)

    @property
    def refute_z(self) -> np.ndarray:
        """Two-sided level-alpha z boundaries of the refuting RCI."""
        return spending_bounds(self.fractions, alpha=self.alpha, kind=self.spending, sides=2)

    @property
    def support_t(self) -> np.ndarray:
        return t_bounds(self.looks, alpha=self.alpha, kind=self.spending, sides=1, method=self.t_method)

    @property
    def refute_t(self) -> np.ndarray:
        return t_bounds(self.looks, alpha=self.alpha, kind=self.spending, sides=2, method=self.t_method)

    def critical_values(self, n: int | None = None, look: int | None = None) -> tuple[float, float]:
        """(support, refute) critical values of the t statistic at a look (by seed count ``n`` or index)."""
        k = self.look_index(n) if look is None else look
        return float(self.support_t[k]), float(self.refute_t[k])

    def look_index(self, n: int) -> int:
        if n not in self.looks:
            raise ValueError(f"{n} seeds is not a look of this design (looks: {list(self.looks)})")
        return self.looks.index(n)

    def to_dict(self) -> dict:
        return {"looks": list(self.looks), "alpha": self.alpha, "spending": self.spending,
                "t_method": self.t_method,
                "support_z": [float(x) for x in self.support_z], "refute_z": [float(x) for x in self.refute_z],
                "support_t": [float(x) for x in self.support_t], "refute_t": [float(x) for x in self.refute_t],
                "method": METHOD.format(spending=SPENDING_NAMES[self.spending], t_method=T_METHOD_TEXT[self.t_method])}


SPENDING_NAMES = {"obf": "O'Brien-Fleming-type", "pocock": "Pocock-type"}
T_METHOD_TEXT = {
    "calibrated": "t boundaries calibrated on 200,000 simulated null t paths to spend exactly the same alpha",
    "level": "z boundaries converted to t quantiles at df = n_k - 1 (significance-level approach, J&T sec. 3.8)",
}
METHOD = ("group-sequential repeated confidence intervals, Lan-DeMets {spending} alpha spending over information "
          "fractions n_k/n_max, z boundaries by recursive numerical integration (Jennison & Turnbull ch. 19), "
          "{t_method}; supported: the one-sided-alpha RCI inside the band (both TOST tests cross); refuted: the "
          "two-sided alpha RCI wholly outside it")


@dataclass
class Look:
    """One look at one claim: the RCIs and the decision (``supported``/``refuted``/``continue``/``inconclusive``)."""

    n: int
    estimate: float
    se: float
    support_ci: tuple[float, float]
    refute_ci: tuple[float, float]
    decision: str
    direction: str | None = None  # refuted: "below" or "above" the band

    def to_dict(self) -> dict:
        return {"n": self.n, "estimate": self.estimate, "se": self.se, "support_ci": list(self.support_ci),
                "refute_ci": list(self.refute_ci), "decision": self.decision, "direction": self.direction}


def look_decision(effects, band, design: SequentialDesign, *, se_fixed: float = 0.0,
                  final: bool | None = None) -> Look:
    """The decision at the look whose seed count is ``len(effects)`` (paired effects on the test scale)."""
    x = np.asarray(effects, dtype=float)
    n = x.size
    se = math.sqrt(float(x.var(ddof=1)) / n + se_fixed ** 2)
    return estimate_look(n, float(x.mean()), se, n - 1, band, design, final=final)


def estimate_look(n: int, estimate: float, se: float, df: float, band, design: SequentialDesign, *,
                  final: bool | None = None) -> Look:
    """The decision at the look at ``n`` seeds from an estimate, its se and t df (``analysis.estimators.effects.EffectEstimate``:
    the one estimator ``analyze`` uses, seeds x images for mIoU).

    The design's t boundaries are for df = n - 1 (seeds only); an estimate with other df (Satterthwaite, with
    a test-set part) gets the boundary of the same one-sided level at its own df, so a seeds-only estimate is
    judged exactly as before.
    """
    k = design.look_index(n)
    c_support, c_refute = design.critical_values(look=k)
    if np.isfinite(df) and df > 0 and df != n - 1:
        c_support, c_refute = (_same_level(c, n - 1, df) for c in (c_support, c_refute))
    elif not np.isfinite(df):
        c_support, c_refute = (float(sps.norm.isf(sps.t.sf(c, n - 1))) if np.isfinite(c) else c
                               for c in (c_support, c_refute))
    mean = float(estimate)
    low, upp = band
    s_ci = (mean - c_support * se, mean + c_support * se)
    r_ci = (mean - c_refute * se, mean + c_refute * se)
    last = (k == len(design.looks) - 1) if final is None else final
    if low <= s_ci[0] and s_ci[1] <= upp:
        return Look(n, mean, se, s_ci, r_ci, "supported")
    if r_ci[0] > upp or r_ci[1] < low:
        return Look(n, mean, se, s_ci, r_ci, "refuted", "above" if r_ci[0] > upp else "below")
    return Look(n, mean, se, s_ci, r_ci, "inconclusive" if last else "continue")


def _same_level(c: float, df_from: float, df_to: float) -> float:
    return float(sps.t.isf(sps.t.sf(c, df_from), df_to)) if np.isfinite(c) else c


def decide_sequence(effects, band, design: SequentialDesign, *, se_fixed: float = 0.0) -> list[Look]:
    """Every look of one claim on the seeds so far (in seed order), stopping at the first settled one.

    Deterministic in the recorded effects, so a resumed run recomputes the same looks.
    """
    x = np.asarray(effects, dtype=float)
    looks: list[Look] = []
    for n in design.looks:
        if n > x.size:
            break
        look = look_decision(x[:n], band, design, se_fixed=se_fixed)
        looks.append(look)
        if look.decision != "continue":
            break
    return looks


SETTLED = ("supported", "refuted")


def combine_hypothesis(decisions: list[str]) -> str:
    """One hypothesis (all claims on one variant) at one look, intersection-union.

    Supported when every part is supported; refuted when any part is refuted (that part's RCI
    excludes its band); otherwise it continues.
    """
    if any(d == "refuted" for d in decisions):
        return "refuted"
    if decisions and all(d == "supported" for d in decisions):
        return "supported"
    return "inconclusive" if any(d == "inconclusive" for d in decisions) else "continue"


@dataclass
class HypothesisLooks:
    """The looks of one hypothesis: per claim, and the hypothesis decision at each look."""

    variant: str
    claims: dict[str, list[Look]] = field(default_factory=dict)
    decisions: list[str] = field(default_factory=list)
    ns: list[int] = field(default_factory=list)

    @property
    def decision(self) -> str:
        return self.decisions[-1] if self.decisions else "continue"

    @property
    def settled(self) -> bool:
        return self.decision in SETTLED


def hypothesis_looks(claim_effects: dict[str, np.ndarray], bands: dict[str, tuple], design: SequentialDesign,
                     *, variant: str, se_fixed: dict[str, float] | None = None) -> HypothesisLooks:
    """Looks of one hypothesis whose claims' paired effects (same seeds, seed order) are given by name.

    A settled claim keeps its decision at later looks (its RCI decided it); the hypothesis stops
    at the first look at which it is settled.
    """
    se_fixed = se_fixed or {}
    n_avail = min((np.asarray(v).size for v in claim_effects.values()), default=0)
    out = HypothesisLooks(variant=variant, claims={name: [] for name in claim_effects})
    fixed: dict[str, str] = {}
    for n in design.looks:
        if n > n_avail:
            break
        decisions = []
        for name, x in claim_effects.items():
            look = look_decision(np.asarray(x, dtype=float)[:n], bands[name], design,
                                 se_fixed=se_fixed.get(name, 0.0))
            if name in fixed:  # already settled: report the look, keep the decision
                look.decision = fixed[name]
            elif look.decision in SETTLED:
                fixed[name] = look.decision
            out.claims[name].append(look)
            decisions.append(look.decision)
        out.ns.append(n)
        out.decisions.append(combine_hypothesis(decisions))
        if out.decisions[-1] in SETTLED:
            break
    return out


def main(argv=None) -> None:
    """``python -m analysis.sequential``: error rates and expected seeds of the design at 0, band edge, band middle."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--band", type=float, nargs=2, default=(0.02, 0.03), help="relative band, e.g. 0.02 0.03")
    ap.add_argument("--sd", type=float, nargs="+", default=[0.005, 0.05], help="sd of the paired log ratio")
    ap.add_argument("--max-seeds", type=int, default=40)
    ap.add_argument("--look-every", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--spending", choices=SPENDING, default="obf")
    ap.add_argument("--n-sim", type=int, default=20_000)
    args = ap.parse_args(argv)
    band = (math.log1p(args.band[0]), math.log1p(args.band[1]))
    truths = {"0": 0.0, "band edge": band[0], "band middle": (band[0] + band[1]) / 2}
    print(f"band {args.band} relative; {args.n_sim} simulated studies each; {args.spending} spending")
    for sd in args.sd:
        for every in args.look_every:
            design = SequentialDesign.every(max_seeds=args.max_seeds, look_every=every, spending=args.spending)
            rng = np.random.default_rng(1)
            naive = simulate_fixed_retest(band[0] + sd * rng.standard_normal((args.n_sim, args.max_seeds)), band)
            for name, effect in truths.items():
                oc = operating_characteristics(effect, sd=sd, band=band, design=design, n_sim=args.n_sim,
                                               random_state=1)
                print(f"sd {sd} look every {every}: true effect {name:11s} P(supported) {oc['supported']:.4f} "
                      f"P(refuted) {oc['refuted']:.4f} expected seeds {oc['expected_seeds']:.1f} / {args.max_seeds}")
            print(f"  (naive fixed-n TOST re-tested after every seed 3..{args.max_seeds}, band edge: "
                  f"P(supported) {naive.mean():.4f})")


if __name__ == "__main__":
    main()
