"""Vectorised simulation of group-sequential studies, for planning and the error-rate tests:
:func:`simulate_hypothesis` is a vectorised copy of :func:`analysis.sequential.hypothesis_looks`
(tested against it), plus the naive fixed-n re-test of issue 9 and a design's operating characteristics.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

# ``design`` arguments are analysis.sequential.design.SequentialDesign objects; not imported, not even for
# type checking, because design re-exports this module's functions (one direction of import only).


def simulate_hypothesis(effects, bands, design, *, se_fixed=None) -> dict:
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


def simulate_sequential(effects: np.ndarray, band, design, *, se_fixed: float = 0.0) -> dict:
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


def operating_characteristics(effect: float, *, sd: float, band, design, se_fixed: float = 0.0,
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
