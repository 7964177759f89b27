"""Does the verdict hold across training budgets? Per-budget verdicts, the variant x budget interaction, a plot.

A study with ``budgets`` (``ablate.study.definition``) runs every variant, seed and claim once per budget;
its runs are keyed ``<variant>@<budget>``. For each claim of the study as written this module gives:

* per budget: the mean paired effect over seeds (test scale: log ratio or difference), its
  (1 - 2 alpha) interval and the claim's verdict, taken from analyze's claim verdicts (level alpha;
  seeds x images when confusions exist), so the section agrees with the verdict table;
* the interaction test "does the effect depend on the budget?" on those same per-budget estimates
  with their full standard errors and df (seeds x images for mIoU): Welch's (1951) heterogeneity test,
  a Cochran's-Q-type Wald statistic with Welch's small-sample correction (``interaction_test``). The
  earlier OLS F-test and Cochran's Q on per-seed effects ignored the test set and called noise an
  interaction in 40-51 % of image-dominated studies;
* a plain sentence when the verdict flips with the budget, and a plot of effect (with CI) vs budget.

``budget_section`` computes it once, inside ``analysis.analyze`` (verdicts.json's ``budgets``; the
report renders it); ``analyze_budgets(run_dir)`` returns that section and writes ``report/budgets.json``
and ``report/plots/budgets_<metric>.png``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from ablate.rundir import json_safe, write_atomic
from ablate.rundir.metrics import format_effect, is_latency
from ablate.study.claim import Claim, format_claim
from analysis.estimators.effects import paired_effects, unit_effect
from analysis.verdicts.rules import band_on_test_scale, refuted_direction

SEP = "@"  # ablate.study.definition.BUDGET_SEP


def split_budget(name: str) -> tuple[str, str | None]:
    """``"skip_fused@6ep"`` -> ``("skip_fused", "6ep")``; a name without a budget -> ``(name, None)``."""
    variant, sep, budget = str(name).rpartition(SEP)
    return (variant, budget) if sep else (str(name), None)


@dataclass
class BudgetEffect:
    budget: str
    n: int
    estimate: float  # test scale
    ci: tuple[float, float]  # (1 - 2 alpha) t-interval, test scale
    p_supported: float  # TOST p (unadjusted)
    p_refuted: float  # two-sided p of 'outside the band' (unadjusted)
    verdict: str = "inconclusive"
    direction: str | None = None
    se: float = math.nan  # of estimate: analyze's (seeds x images for mIoU)
    df: float = math.nan


@dataclass
class BudgetClaim:
    claim: str  # the claim as written in the study (no budget)
    variant: str
    metric: str
    relative: bool
    band: tuple[float, float]  # test scale
    budgets: list[BudgetEffect] = field(default_factory=list)
    interaction: dict = field(default_factory=dict)
    flips: bool = False
    headline: str = ""  # one sentence: flips / holds / not settled, with the verdict per budget
    summary: str = ""  # the headline's verdicts with estimates, intervals and the interaction test

    @classmethod
    def from_dict(cls, d: dict) -> BudgetClaim:
        """Back from verdicts.json (NaN written as null comes back as NaN)."""
        def f(v):
            return math.nan if v is None else float(v)

        budgets = [BudgetEffect(b["budget"], int(b.get("n") or 0), f(b.get("estimate")),
                                tuple(f(v) for v in (b.get("ci") or [None, None])), f(b.get("p_supported")),
                                f(b.get("p_refuted")), b.get("verdict") or "inconclusive", b.get("direction"),
                                f(b.get("se")), f(b.get("df")))
                   for b in d.get("budgets") or []]
        return cls(d["claim"], d["variant"], d["metric"], bool(d.get("relative", True)),
                   tuple(f(v) for v in d["band"]), budgets, dict(d.get("interaction") or {}),
                   bool(d.get("flips")), d.get("headline") or "", d.get("summary") or "")


def budget_effect(x: np.ndarray, band, budget: str, alpha: float) -> BudgetEffect:
    """Estimate, interval and unadjusted p-values of one claim at one budget (paired effects ``x``),
    by the engine's one interval engine (``analysis.estimators.effects.unit_effect``)."""
    est = unit_effect(x, unit="seeds")
    if est.n >= 2 and est.sd == 0:  # identical effects: the band decides with certainty (as analysis.estimators.verdict_power)
        m = est.estimate
        inside = band[0] <= m <= band[1]
        return BudgetEffect(budget, est.n, m, (m, m), 0.0 if inside else 1.0, 1.0 if inside else 0.0, se=0.0,
                            df=est.df)
    lo, hi = est.interval(1 - 2 * alpha)
    return BudgetEffect(budget, est.n, est.estimate, (lo, hi), est.tost(*band)["p"], est.refute(*band), se=est.se,
                        df=est.df)


def interaction_test(effects: list[BudgetEffect]) -> dict:
    """Does the effect differ between budgets? Welch's (1951) heterogeneity test on the per-budget estimates with
    their full standard errors and df (analyze's: seeds x test images for mIoU), a Cochran's-Q-type Wald statistic
    with Welch's small-sample correction (k = 2: the Welch t-test of the difference, squared).

    The budgets are treated as independent; the runs of one seed and the test images are shared across budgets,
    which correlates the estimates positively and only makes the test conservative.
    """
    usable = [b for b in effects if np.isfinite(b.estimate) and np.isfinite(b.se) and b.se > 0 and b.df > 0]
    out: dict = {"budgets": len(usable), "test": None, "F": math.nan, "df": [math.nan, math.nan], "p": math.nan}
    if len(usable) < 2:
        return {**out, "reason": "fewer than two budgets with an estimate and a standard error"}
    y = np.array([b.estimate for b in usable])
    w = 1 / np.array([b.se for b in usable]) ** 2
    df = np.array([b.df for b in usable], dtype=float)
    k = len(usable)
    mean = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - mean) ** 2))  # Cochran's Q with the full SEs
    h = float(np.sum((1 - w / w.sum()) ** 2 / df))  # 0 when every df is infinite
    f_stat = q / (k - 1) / (1 + 2 * (k - 2) / (k**2 - 1) * h)
    df_den = (k**2 - 1) / (3 * h) if h > 0 else math.inf
    p = float(sps.f.sf(f_stat, k - 1, df_den)) if np.isfinite(df_den) else float(sps.chi2.sf(q, k - 1))
    return {**out, "test": TEST_NAME, "F": f_stat, "df": [float(k - 1), float(df_den)], "p": p, "cochran_q": q}


TEST_NAME = "Welch test of the per-budget effects with their seeds x images standard errors"


def _seed_level_verdict(b: BudgetEffect, band, alpha: float) -> None:
    # analyze's claim rule (level alpha, as ClaimVerdict: multiplicity is the hypothesis's job)
    if np.isfinite(b.p_supported) and b.p_supported <= alpha:
        b.verdict = "supported"
    elif np.isfinite(b.p_refuted) and b.p_refuted <= alpha:
        b.verdict, b.direction = "refuted", refuted_direction(b.ci, band)


def _from_verdict(cv: dict, budget: str) -> BudgetEffect:
    """A BudgetEffect from analyze's claim verdict (its uncertainty model: seeds x images when confusions exist)."""
    relative = bool(cv.get("relative", True))
    to_test = (lambda v: math.log1p(v) if v is not None and v > -1 else math.nan) if relative else (
        lambda v: math.nan if v is None else float(v))
    ci = cv.get("ci") or [None, None]

    def num(key):  # verdicts.json writes NaN as null
        value = cv.get(key)
        return math.nan if value is None else float(value)

    return BudgetEffect(budget, int(cv.get("n") or 0), num("test_estimate"), (to_test(ci[0]), to_test(ci[1])),
                        num("p_equivalence"), num("p_refute"), str(cv.get("verdict", "inconclusive")),
                        cv.get("direction"), se=num("se"), df=num("df") if cv.get("df") is not None else math.inf)


def _summary(c: BudgetClaim) -> tuple[str, str]:
    """(headline, summary) of one claim across budgets; sets ``c.flips``."""
    parts = []
    for b in c.budgets:
        effect = format_effect(b.estimate, c.metric, relative=c.relative, ci=b.ci, test_scale=True)
        verdict = b.verdict + (f", {b.direction}" if b.direction else "")
        parts.append(f"{b.budget}: {verdict} ({effect}, {b.n} seeds)")
    settled = {b.verdict for b in c.budgets if b.verdict != "inconclusive"}
    signs = {np.sign(b.ci[0]) for b in c.budgets if np.sign(b.ci[0]) == np.sign(b.ci[1]) and b.ci[0] != 0}
    c.flips = len(settled) > 1 or len(signs) > 1
    it = c.interaction
    test = (f"budget x variant interaction ({it['test']}): F({it['df'][0]:.0f}, {it['df'][1]:.1f}) = {it['F']:.3g}, "
            f"p = {it['p']:.3g}" if it.get("test") and np.isfinite(it.get("p", math.nan)) else "interaction not testable")
    if c.flips:
        what = "the verdict flips" if len(settled) > 1 else "the sign of the effect flips"
        head = f"{c.claim}: {what} with the training budget"
    elif len(settled) == 1 and all(b.verdict in settled for b in c.budgets):
        head = f"{c.claim}: {next(iter(settled))} at every budget"
    else:
        head = f"{c.claim}: no flip seen, but not settled at every budget"
    verdicts = "; ".join(f"{b.budget}: {b.verdict}" + (f", {b.direction}" if b.direction else "") for b in c.budgets)
    return f"{head} ({verdicts})", f"{head} -- " + "; ".join(parts) + f"; {test}."


def budget_claims(seeds: pd.DataFrame, claims, *, baseline: str, budgets: list[str], alpha: float = 0.05,
                  verdicts: dict | None = None) -> list[BudgetClaim]:
    """Per-budget effects, verdicts and the interaction test for the study's claims as written.

    ``claims`` are the study's claims *before* expansion (variants without ``@budget``); ``baseline``
    likewise; ``seeds`` are analysis.run_reader.seed_rows of the run (variants ``<variant>@<budget>``).
    ``verdicts`` (analyze's result): each budget's estimate, interval and verdict are taken from its
    claim verdict, so this section and the verdict table agree; without it they are computed over
    seeds alone by the same rule (``budget_effect``).
    """
    by_claim = {}
    for cv in (verdicts or {}).get("claims", []):
        key = (cv.get("variant"), cv.get("baseline"), cv.get("metric"),
               tuple(float(b) for b in (cv.get("band") or ())), bool(cv.get("relative", True)))
        by_claim[key] = cv
    out: list[BudgetClaim] = []
    for claim in claims:
        if is_latency(claim.metric):
            continue  # speed does not depend on the training budget's seeds
        band = band_on_test_scale(claim)
        bc = BudgetClaim(claim=format_claim(claim), variant=claim.variant, metric=claim.metric,
                         relative=bool(claim.relative), band=band)
        for budget in budgets:
            at = Claim(f"{claim.variant}{SEP}{budget}", claim.metric, band=tuple(claim.band), relative=claim.relative,
                       baseline=f"{claim.baseline or baseline}{SEP}{budget}")
            key = (at.variant, at.baseline, at.metric, tuple(float(b) for b in at.band), bool(at.relative))
            if key in by_claim:
                bc.budgets.append(_from_verdict(by_claim[key], budget))
            else:
                effect = budget_effect(paired_effects(seeds, at, baseline)[1], band, budget, alpha)
                _seed_level_verdict(effect, band, alpha)
                bc.budgets.append(effect)
        bc.interaction = interaction_test(bc.budgets)
        out.append(bc)
    for bc in out:
        bc.headline, bc.summary = _summary(bc)
    return out


def budget_section(study: dict, seeds: pd.DataFrame, claim_verdicts: list[dict], *, alpha: float = 0.05,
                   warnings: list[str] | None = None) -> dict | None:
    """verdicts.json's ``budgets`` for a study that declares ``budgets`` (None otherwise); computed once, by analyze.

    ``seeds``: analysis.run_reader.seed_rows of the run; ``claim_verdicts``: analyze's claim verdicts (dicts).
    Returns ``{"budgets", "baseline", "alpha", "claims": [BudgetClaim as dict], "flips", "text"}``.
    """
    budgets = list(study.get("budgets") or {})
    if not budgets:
        return None
    baseline, _ = split_budget(study.get("baseline") or "")
    claims = {}  # the claims as written: one per (variant, metric, band), from the expanded ones
    for d in study.get("claims", []):
        c = Claim.from_dict(d)
        variant, _ = split_budget(c.variant)
        base = split_budget(c.baseline)[0] if c.baseline else None
        written = Claim(variant, c.metric, band=tuple(c.band), relative=c.relative,
                        baseline=None if base in (None, baseline) else base)
        claims.setdefault(format_claim(written), written)
    results = budget_claims(seeds, list(claims.values()), baseline=baseline, budgets=budgets, alpha=alpha,
                            verdicts={"claims": claim_verdicts})
    return {"budgets": budgets, "baseline": baseline, "alpha": alpha, "claims": [asdict(r) for r in results],
            "flips": [r.claim for r in results if r.flips], "text": "\n".join(r.summary for r in results),
            "warnings": list(warnings or [])}


def budget_outputs(run_dir, verdicts: dict, *, write: bool = True) -> dict | None:
    """The budget section of ``verdicts`` (analyze's result for ``run_dir``; None when its study declares no
    ``budgets``), returned as is. With ``write`` also ``report/budgets.json``. ``analysis.analyze_budgets`` runs
    analyze first when needed and draws the plots (analysis.plots.effect_vs_budget): this layer calls neither.
    """
    out = verdicts.get("budgets")
    if out is None:
        return None
    out = dict(out)
    if write:
        report = Path(run_dir) / "report"
        report.mkdir(parents=True, exist_ok=True)
        write_budgets_json(out, report)
    return out


def write_budgets_json(section: dict, report_dir) -> Path:
    path = Path(report_dir) / "budgets.json"
    write_atomic(path, json.dumps(json_safe(section), indent=2) + "\n")
    return path
