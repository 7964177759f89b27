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

Everything is torch-free, pure numpy/scipy; :func:`simulate_sequential` is a vectorised copy of
:func:`decide_sequence` for planning and the error-rate tests (tested against it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import optimize
from scipy import stats as sps

SPENDING = ("obf", "pocock")

# --------------------------------------------------------------------------- spending functions


def spending(t, alpha: float, kind: str = "obf") -> np.ndarray:
    """Cumulative one-sided alpha spent by information fraction ``t`` (gsDesign's sfLDOF / sfLDPocock).

    ``obf``: 2·(1 − Φ(z_{1−α/2}/√t)) (Lan & DeMets 1983, O'Brien-Fleming-type);
    ``pocock``: α·log(1 + (e − 1)·t) (Lan & DeMets 1983, Pocock-type).
    """
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "obf":
        with np.errstate(divide="ignore"):
            z = sps.norm.isf(alpha / 2) / np.sqrt(t)
        return 2 * sps.norm.sf(z)
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise ValueError(f"unknown spending function {kind!r}: use one of {', '.join(SPENDING)}")


# --------------------------------------------------------------------------- numerical integration


def _grid(mean: float, lower: float, upper: float, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and Simpson weights on (lower, upper) for a N(mean, 1) density (Jennison & Turnbull sec. 19.2)."""
    i = np.arange(1, 6 * r)
    x = np.where(i < r, -3 - 4 * np.log(r / i),
                 np.where(i <= 5 * r, -3 + 3 * (i - r) / (2 * r), 3 + 4 * np.log(r / np.maximum(6 * r - i, 1))))
    x = mean + x
    inside = x[(x > lower) & (x < upper)]
    ends = [v for v in (lower, upper) if np.isfinite(v) and x[0] < v < x[-1]]
    if lower >= x[-1] or upper <= x[0]:
        pts = np.array([lower if np.isfinite(lower) else upper])  # region beyond the grid: negligible mass
        return pts, np.zeros(1)
    z = np.unique(np.concatenate([inside, ends]))
    if z.size == 1:
        return z, np.zeros(1)
    mids = (z[:-1] + z[1:]) / 2
    pts = np.empty(2 * z.size - 1)
    pts[0::2], pts[1::2] = z, mids
    h = np.diff(z)
    w = np.zeros_like(pts)
    w[0:-1:2] += h / 6
    w[1::2] += 4 * h / 6
    w[2::2] += h / 6
    return pts, w


class _Paths:
    """Weighted density of the paths still running after a look, on the Jennison & Turnbull ch. 19 grid."""

    def __init__(self, info, theta: float, r: int):
        self.info, self.sq, self.theta, self.r = info, np.sqrt(info), theta, r
        self.k = -1  # last look passed
        self.z = self.dens = None

    def exits(self, lower: float, upper: float) -> tuple[float, float]:
        """P(crossing above ``upper`` / below ``lower`` at the next look, still running until then)."""
        k = self.k + 1
        if k == 0:
            mean = self.theta * self.sq[0]
            return float(sps.norm.sf(upper - mean)), float(sps.norm.cdf(lower - mean))
        delta = self.info[k] - self.info[k - 1]
        sd = math.sqrt(delta)
        shift = self.z * self.sq[k - 1] + self.theta * delta  # mean of S_k given Z_{k-1} = z
        return (float(self.dens @ sps.norm.sf((upper * self.sq[k] - shift) / sd)),
                float(self.dens @ sps.norm.cdf((lower * self.sq[k] - shift) / sd)))

    def advance(self, lower: float, upper: float) -> None:
        """Pass the next look with continuation region (lower, upper)."""
        k = self.k + 1
        mean = self.theta * self.sq[k]
        z_new, w_new = _grid(mean, lower, upper, self.r)
        if k == 0:
            self.dens = sps.norm.pdf(z_new - mean) * w_new
        else:
            delta = self.info[k] - self.info[k - 1]
            sd = math.sqrt(delta)
            shift = self.z * self.sq[k - 1] + self.theta * delta
            kernel = sps.norm.pdf((z_new[:, None] * self.sq[k] - shift[None, :]) / sd) * (self.sq[k] / sd)
            self.dens = (kernel @ self.dens) * w_new
        self.z, self.k = z_new, k


def crossing_probabilities(lower, upper, info, *, theta: float = 0.0, r: int = 32) -> dict:
    """P(first exit of Z_k above ``upper[k]`` / below ``lower[k]``) at each look, Z_k ~ canonical joint normal.

    Z_k = S_k / √I_k with independent increments S_k − S_{k−1} ~ N(θ·ΔI, ΔI) (Jennison & Turnbull
    ch. 3); the density of the continuing paths is propagated look to look on the ch. 19 grid
    (gsDesign's gsProbability does the same). ±inf bounds are allowed.
    """
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    info = np.asarray(info, dtype=float)
    paths = _Paths(info, theta, r)
    up, lo = np.zeros(info.size), np.zeros(info.size)
    for k in range(info.size):
        up[k], lo[k] = paths.exits(lower[k], upper[k])
        if k < info.size - 1:
            paths.advance(lower[k], upper[k])
    return {"upper": up, "lower": lo}


def _solve(f, target: float) -> float:
    # f(c) = crossing probability, decreasing in c; a spend too small to reach is an infinite bound
    if target <= 1e-15:
        return math.inf
    return optimize.brentq(lambda c: f(c) - target, -10.0, 40.0, xtol=1e-10)


@lru_cache(maxsize=256)
def _bounds(fractions: tuple, alpha: float, kind: str, sides: int, r: int) -> tuple:
    t = np.asarray(fractions, dtype=float)
    per_side = alpha if sides == 1 else alpha / 2
    increments = np.diff(np.concatenate([[0.0], spending(t, per_side, kind)]))
    paths = _Paths(t, 0.0, r)
    bounds: list[float] = []

    def lower_of(c: float) -> float:  # symmetric two-sided, or no lower boundary
        return -c if sides == 2 else -math.inf

    for k in range(t.size):
        c = _solve(lambda c: paths.exits(lower_of(c), c)[0], increments[k])
        bounds.append(c)
        if k < t.size - 1:
            paths.advance(lower_of(c), c)
    return tuple(bounds)


def spending_bounds(fractions, *, alpha: float = 0.05, kind: str = "obf", sides: int = 1, r: int = 32) -> np.ndarray:
    """z boundaries c_k at information ``fractions`` spending ``alpha`` with the Lan-DeMets ``kind`` function.

    ``sides=1``: one-sided level alpha (reject when Z_k >= c_k; gsDesign ``test.type=1``).
    ``sides=2``: symmetric two-sided level alpha, alpha/2 spent a side (|Z_k| >= c_k; ``test.type=2``).
    """
    t = np.asarray(fractions, dtype=float)
    if t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1 + 1e-12:
        raise ValueError("information fractions must increase strictly within (0, 1]")
    if sides not in (1, 2):
        raise ValueError("sides must be 1 or 2")
    return np.array(_bounds(tuple(np.round(t, 12)), float(alpha), kind, int(sides), int(r)))


T_METHODS = ("calibrated", "level")
_T_PATHS = 200_000


@lru_cache(maxsize=64)
def _t_bounds(looks: tuple, alpha: float, kind: str, sides: int, n_paths: int, seed: int) -> tuple:
    # Under the null edge the one-sample t statistic of the seeds so far is pivotal (free of the mean and
    # sd), so its crossing probabilities depend only on the looks: simulate the null t process once
    # (fixed seed, deterministic) and set c_k so that the paths still running cross at look k with
    # exactly the spending increment. Memory O(paths): the seeds are added one column at a time.
    t = np.asarray(looks, dtype=float) / looks[-1]
    per_side = alpha if sides == 1 else alpha / 2
    increments = np.diff(np.concatenate([[0.0], spending(t, per_side, kind)])) * (1 if sides == 1 else 2)
    rng = np.random.default_rng(seed)
    total, total_sq = np.zeros(n_paths), np.zeros(n_paths)
    running = np.ones(n_paths, dtype=bool)
    bounds, n_done = [], 0
    for n in looks:
        block = rng.standard_normal((n_paths, n - n_done))
        total += block.sum(axis=1)
        total_sq += (block * block).sum(axis=1)
        n_done = n
        mean = total / n
        stat = mean / np.sqrt(np.maximum(total_sq - n * mean ** 2, 1e-300) / (n - 1) / n)
        stat = np.abs(stat) if sides == 2 else stat
        live = np.sort(stat[running])[::-1]
        cross = int(round(increments[len(bounds)] * n_paths))
        if cross <= 0:
            c = math.inf
        elif cross >= live.size:
            c = float(live[-1])
        else:  # between the cross-th and (cross+1)-th largest: exactly `cross` paths exit here
            c = float((live[cross - 1] + live[cross]) / 2)
        bounds.append(c)
        running &= ~(stat >= c)
    return tuple(bounds)


def t_bounds(looks, *, alpha: float = 0.05, kind: str = "obf", sides: int = 1, method: str = "calibrated",
             n_paths: int = _T_PATHS, seed: int = 0) -> np.ndarray:
    """Critical values for the one-sample t statistic at each look (``looks`` = seed counts).

    ``calibrated``: the t process under the null is simulated (``n_paths``, fixed ``seed``) and each
    c_k spends exactly the spending increment among the paths still running (exact up to Monte-Carlo
    error ~0.0005 in alpha). ``level``: Jennison & Turnbull's significance-level approach, the z
    boundary's nominal level at df = n_k − 1 (slightly liberal at few seeds: 0.053-0.057 for 0.05,
    see tests/test_sequential.py).
    """
    looks = tuple(int(n) for n in looks)
    if method == "calibrated":
        return np.array(_t_bounds(looks, float(alpha), kind, int(sides), int(n_paths), int(seed)))
    if method == "level":
        z = spending_bounds(np.asarray(looks, dtype=float) / looks[-1], alpha=alpha, kind=kind, sides=sides)
        return sps.t.isf(sps.norm.sf(z), np.asarray(looks) - 1)
    raise ValueError(f"unknown t method {method!r}: use one of {', '.join(T_METHODS)}")


def classical_constant(k_looks: int, *, alpha: float = 0.05, kind: str = "pocock", r: int = 32) -> float:
    """Pocock's C_P(K) or O'Brien & Fleming's C_B(K): equally spaced two-sided tests at level alpha.

    Pocock: reject at look k when |Z_k| >= C_P; O'Brien-Fleming: when |Z_k| >= C_B·√(K/k)
    (Jennison & Turnbull Tables 2.1 and 2.3).
    """
    info = np.arange(1, k_looks + 1, dtype=float)
    shape = np.ones(k_looks) if kind == "pocock" else np.sqrt(k_looks / info)

    def total(c):
        p = crossing_probabilities(-c * shape, c * shape, info, r=r)
        return p["upper"].sum() + p["lower"].sum()

    return optimize.brentq(lambda c: total(c) - alpha, 1.0, 6.0, xtol=1e-10)


# --------------------------------------------------------------------------- the design and its verdicts


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
    k = design.look_index(n)
    c_support, c_refute = design.critical_values(look=k)
    mean = float(x.mean())
    se = math.sqrt(float(x.var(ddof=1)) / n + se_fixed ** 2)
    low, upp = band
    s_ci = (mean - c_support * se, mean + c_support * se)
    r_ci = (mean - c_refute * se, mean + c_refute * se)
    last = (k == len(design.looks) - 1) if final is None else final
    if low <= s_ci[0] and s_ci[1] <= upp:
        return Look(n, mean, se, s_ci, r_ci, "supported")
    if r_ci[0] > upp or r_ci[1] < low:
        return Look(n, mean, se, s_ci, r_ci, "refuted", "above" if r_ci[0] > upp else "below")
    return Look(n, mean, se, s_ci, r_ci, "inconclusive" if last else "continue")


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


# --------------------------------------------------------------------------- simulation (vectorised)


def simulate_hypothesis(effects, bands, design: SequentialDesign, *, se_fixed=None) -> dict:
    """Vectorised :func:`hypothesis_looks` over many studies.

    ``effects``: [claims, studies, max_seeds] paired effects (one claim: [studies, max_seeds] is accepted),
    ``bands``: one band per claim, ``se_fixed``: one per claim (or None). Returns ``decision`` (array
    of str: supported / refuted / inconclusive), ``n_used`` (seeds at the stopping look),
    ``stop_look`` (index into ``design.looks``) and ``claims`` ([claims, studies] each claim's decision).
    A design with one look and ``t_method="level"`` is the fixed-n rule.
    """
    x = np.asarray(effects, dtype=float)
    if x.ndim == 2:
        x, bands = x[None], [bands]
    m, n_studies, n_max = x.shape
    if n_max < design.looks[-1]:
        raise ValueError(f"need {design.looks[-1]} effects per study, got {n_max}")
    se_fixed = np.zeros(m) if se_fixed is None else np.broadcast_to(np.asarray(se_fixed, dtype=float), (m,))
    csum, csq = np.cumsum(x, axis=2), np.cumsum(x * x, axis=2)
    low = np.array([b[0] for b in bands], dtype=float)[:, None]
    upp = np.array([b[1] for b in bands], dtype=float)[:, None]
    claim = np.full((m, n_studies), "continue", dtype=object)
    decision = np.full(n_studies, "inconclusive", dtype=object)
    stop = np.full(n_studies, len(design.looks) - 1)
    running = np.ones(n_studies, dtype=bool)
    for k, n in enumerate(design.looks):
        c_support, c_refute = design.critical_values(look=k)
        mean = csum[:, :, n - 1] / n
        var = np.maximum(csq[:, :, n - 1] - n * mean ** 2, 0.0) / (n - 1)
        se = np.sqrt(var / n + se_fixed[:, None] ** 2)
        open_ = running[None, :] & (claim == "continue")
        sup = open_ & (mean - c_support * se >= low) & (mean + c_support * se <= upp)
        ref = open_ & ~sup & ((mean - c_refute * se > upp) | (mean + c_refute * se < low))
        claim[sup], claim[ref] = "supported", "refuted"
        h_ref = running & np.any(claim == "refuted", axis=0)
        h_sup = running & ~h_ref & np.all(claim == "supported", axis=0)
        decision[h_ref], decision[h_sup] = "refuted", "supported"
        stop[h_ref | h_sup] = k
        running &= ~(h_ref | h_sup)
    claim[claim == "continue"] = "inconclusive"
    return {"decision": decision, "n_used": np.asarray(design.looks)[stop], "stop_look": stop, "claims": claim}


def simulate_sequential(effects: np.ndarray, band, design: SequentialDesign, *, se_fixed: float = 0.0) -> dict:
    """Vectorised :func:`decide_sequence` over many studies: ``effects`` is [studies, max_seeds]."""
    return simulate_hypothesis(effects, band, design, se_fixed=[se_fixed])


def simulate_fixed_retest(effects: np.ndarray, band, *, alpha: float = 0.05, first: int = 3) -> np.ndarray:
    """The naive rule issue 9 measured: fixed-n TOST at level alpha re-run after every seed, stop when supported.

    Returns True where a study was (wrongly or rightly) declared supported at some look.
    """
    x = np.asarray(effects, dtype=float)
    n_studies, n_max = x.shape
    csum, csq = np.cumsum(x, axis=1), np.cumsum(x * x, axis=1)
    low, upp = band
    hit = np.zeros(n_studies, dtype=bool)
    for n in range(first, n_max + 1):
        mean = csum[:, n - 1] / n
        se = np.sqrt(np.maximum(csq[:, n - 1] - n * mean ** 2, 0.0) / (n - 1) / n)
        c = sps.t.isf(alpha, n - 1)
        hit |= (mean - c * se >= low) & (mean + c * se <= upp)
    return hit


def operating_characteristics(effect: float, *, sd: float, band, design: SequentialDesign, se_fixed: float = 0.0,
                              n_sim: int = 20_000, random_state=0) -> dict:
    """P(supported), P(refuted), P(settled) and expected seeds of the design at a true mean paired ``effect``.

    By simulation of ``n_sim`` studies with normal paired effects (sd ``sd``); the test-set part of
    the error (``se_fixed``) is drawn once per study, as it is shared by all its seeds.
    """
    rng = np.random.default_rng(random_state)
    x = effect + sd * rng.standard_normal((n_sim, design.looks[-1]))
    if se_fixed > 0:
        x += se_fixed * rng.standard_normal((n_sim, 1))
    sim = simulate_sequential(x, band, design, se_fixed=se_fixed)
    d = sim["decision"]
    p_sup, p_ref = float(np.mean(d == "supported")), float(np.mean(d == "refuted"))
    return {"effect": float(effect), "sd": float(sd), "n_sim": int(n_sim), "supported": p_sup, "refuted": p_ref,
            "settled": p_sup + p_ref, "expected_seeds": float(np.mean(sim["n_used"])),
            "max_seeds": int(design.looks[-1])}


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
