"""Group-sequential boundaries: Lan-DeMets alpha spending (O'Brien-Fleming-type, Pocock-type), z boundaries
by the recursive numerical integration of Armitage, McPherson & Rowe (1969) on the grid of Jennison &
Turnbull (2000, ch. 19) -- the method of R's gsDesign / rpact -- and t boundaries for few seeds
(calibrated on a simulated null t process, or J&T's significance-level conversion).

Used by :class:`analysis.sequential.SequentialDesign`; pure numpy/scipy.
"""

from __future__ import annotations

import math
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
