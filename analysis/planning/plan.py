"""``ablate plan``: from a pilot run, how many seeds (and hours) settle each claim and hypothesis.

A pilot is any run directory of the same variants with at least 2 paired seeds (``ablate run STUDY
--preset pilot``: 3 seeds). From it, per seed-based claim:

* the sd of the paired effect on the test scale (log ratio for relative claims, difference for
  absolute ones) and its one-sided ``sd_confidence`` (80 %) chi-square upper confidence bound
  sd * sqrt((n - 1) / chi2_{1-conf}(n - 1)): plans use the bound, because 3 seeds' sd is often half
  the truth;
* the probability of each verdict at the budget (``seeds``) by the rule ``analyze`` uses (fixed n:
  ``analysis.estimators.verdict_power``, exact) and by the ``--until-settled`` design (``analysis.sequential``,
  simulated), for two true effects: the band's middle (the claim as stated) and the pilot's estimate;
* seeds needed for 80 % / 90 % (supported if the claim is true; settled at the pilot's estimate),
  the narrowest band the budget settles, and the compute that implies (results.csv train_seconds).

Per hypothesis (the seed-based claims on one variant) the verdict is intersection-union over its
claims, simulated with the pilot's correlation between them. Multiplicity across the m hypotheses
is planned with Bonferroni (alpha / m), a lower bound of Holm's power. Speed claims are judged on
latency launches, not seeds, and are listed as such.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from ablate.errors import AblateError
from ablate.rundir.metrics import format_effect, is_latency
from ablate.study.claim import as_claim, format_claim
from analysis import sequential
from analysis.estimators import verdict_power as power
from analysis.estimators.effects import paired_effects
from analysis.run_reader import load_run, seed_rows
from analysis.verdicts.rules import band_on_test_scale

PILOT_HINT = "make one with `ablate run STUDY --preset pilot` (3 seeds), then `ablate plan STUDY --pilot RUN_DIR`"
TARGETS = (0.8, 0.9)


class PlanError(AblateError):
    """No usable pilot."""


def sd_upper_bound(sd: float, n: int, confidence: float = 0.8) -> float:
    """One-sided chi-square upper confidence bound of a normal sd from n observations."""
    if n < 2 or not np.isfinite(sd):
        return math.nan
    return float(sd * math.sqrt((n - 1) / sps.chi2.ppf(1 - confidence, n - 1)))


@dataclass
class ClaimPlan:
    claim: str
    variant: str
    metric: str
    relative: bool
    band: tuple[float, float]  # test scale
    n_pilot: int
    estimate: float  # test scale
    sd: float
    sd_plan: float  # upper confidence bound used to plan
    seeds: int  # the budget planned for
    se_fixed: float = 0.0  # the pilot's test-set part of the SE: more seeds do not shrink it
    fixed: dict = field(default_factory=dict)  # true effect name -> verdict probabilities at `seeds`
    sequential: dict = field(default_factory=dict)  # true effect name -> operating characteristics
    seeds_needed: dict = field(default_factory=dict)  # "supported 80%" -> n | None
    smallest_band: float = math.nan  # width on the test scale settleable at `seeds` with 80 %
    note: str = ""


@dataclass
class HypothesisPlan:
    variant: str
    claims: list[str]
    alpha: float
    fixed: dict = field(default_factory=dict)
    sequential: dict = field(default_factory=dict)
    seeds_needed: dict = field(default_factory=dict)
    hours: dict = field(default_factory=dict)


@dataclass
class Plan:
    pilot: str
    baseline: str
    seeds: int
    alpha: float
    sd_confidence: float
    design: dict
    seconds_per_run: dict[str, float]
    claims: list[ClaimPlan]
    hypotheses: list[HypothesisPlan]
    skipped: list[str]
    warnings: list[str]
    max_n: int = 1000

    def to_dict(self) -> dict:
        return asdict(self)

    def hours(self, n: int | None, variants) -> float:
        """Compute for n seeds of these variants and the baseline (hours, from the pilot's run times)."""
        if n is None:
            return math.nan
        names = set(variants) | {self.baseline}
        return n * sum(self.seconds_per_run.get(v, math.nan) for v in names) / 3600


def seconds_per_run(results: pd.DataFrame) -> dict[str, float]:
    """Median train_seconds of the finished runs of each variant."""
    if "train_seconds" not in results.columns:
        return {}
    ok = results[(results["status"] == "ok") & results["train_seconds"].notna()]
    return {str(v): float(g["train_seconds"].median()) for v, g in ok.groupby("variant")}


def plan_study(pilot_dir, claims, *, baseline: str | None = None, seeds: int = 10, alpha: float = 0.05,
               sd_confidence: float = 0.8, look_every: int = 1, first_look: int = 3, spending: str = "obf",
               n_sim: int = 20_000, max_n: int = 1000, random_state: int = 0, protocol: dict | None = None,
               analyze) -> Plan:
    """The plan for ``claims`` (Claim objects or their text) from the pilot run directory ``pilot_dir``.

    ``protocol`` (``{"epochs", "image_size"}`` of the study to plan) rescales the pilot's measured seconds
    per run when the pilot ran a cheaper protocol: time ~ epochs x pixels (said in the warnings).
    ``analyze``: the orchestrator's ``analysis.analyze`` (for the pilot's test-set part); ``analysis.plan_study``
    passes it in.
    """
    pilot_dir = Path(pilot_dir)
    if not (pilot_dir / "results.csv").is_file():
        raise PlanError(f"no pilot run at {pilot_dir}: {PILOT_HINT}")
    tables = load_run(pilot_dir)
    warnings = list(tables.warnings)
    baseline = baseline or tables.study.get("baseline")
    if not baseline:
        raise PlanError(f"{pilot_dir}/study.json names no baseline: pass the study file or --baseline")
    rows = seed_rows(tables.results, warnings)
    claims = [as_claim(c) for c in claims]
    seed_claims = [c for c in claims if not is_latency(c.metric)]
    skipped = [f"{format_claim(c)}: judged on latency launches, not seeds (`ablate bench latency`)"
               for c in claims if is_latency(c.metric)]
    variants = sorted({c.variant for c in seed_claims})
    m = max(1, len(variants))
    alpha_h = alpha / m  # Bonferroni across hypotheses: a lower bound of Holm's power
    rng = np.random.default_rng(random_state)
    design = sequential.SequentialDesign.every(max_seeds=max(seeds, first_look), look_every=look_every,
                                               first_look=first_look, alpha=alpha_h, spending=spending)
    fixed_design = sequential.SequentialDesign((seeds,), alpha=alpha_h, t_method="level")

    fixed_parts = image_components(pilot_dir, seed_claims, baseline, alpha, warnings, analyze=analyze)
    claim_plans: list[ClaimPlan] = []
    effects_by_claim: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for claim in seed_claims:
        if claim.metric not in rows.columns:
            raise PlanError(f"the pilot's results.csv has no column {claim.metric!r} for claim "
                            f"{format_claim(claim)}: is it a pilot of this study?")
        seed_ids, x = paired_effects(rows, claim, baseline)
        text = format_claim(claim)
        if x.size < 2:
            raise PlanError(f"the pilot has {x.size} paired seed(s) of {claim.variant} and {baseline} "
                            f"(need >= 2): {PILOT_HINT}")
        effects_by_claim[text] = (seed_ids, x)
        band = band_on_test_scale(claim)
        sd = float(np.std(x, ddof=1))
        sd_plan = sd_upper_bound(sd, x.size, sd_confidence)
        cp = ClaimPlan(claim=text, variant=claim.variant, metric=claim.metric,
                       relative=bool(claim.relative), band=band, n_pilot=int(x.size),
                       estimate=float(x.mean()), sd=sd, sd_plan=sd_plan, seeds=int(seeds),
                       se_fixed=fixed_parts.get(_claim_key(claim), 0.0))
        fx = cp.se_fixed
        truths = {"band middle": (band[0] + band[1]) / 2, "pilot estimate": cp.estimate}
        for name, effect in truths.items():
            cp.fixed[name] = power.verdict_probabilities(effect, sd=sd_plan, n=seeds, band=band, alpha=alpha_h,
                                                         se_fixed=fx)
            cp.sequential[name] = sequential.operating_characteristics(
                effect, sd=sd_plan, band=band, design=design, se_fixed=fx, n_sim=n_sim, random_state=rng)
        mid = truths["band middle"]
        for target in TARGETS:
            cp.seeds_needed[f"supported {target:.0%} (fixed n, band middle)"] = power.seeds_needed(
                mid, sd=sd_plan, band=band, alpha=alpha_h, target=target, outcome="supported", max_n=max_n,
                se_fixed=fx)
            cp.seeds_needed[f"settled {target:.0%} (fixed n, pilot estimate)"] = power.seeds_needed(
                cp.estimate, sd=sd_plan, band=band, alpha=alpha_h, target=target, outcome="settled", max_n=max_n,
                se_fixed=fx)
        cp.smallest_band = power.smallest_settleable_band(sd=sd_plan, n=seeds, alpha=alpha_h, target=0.8, se_fixed=fx)
        if sd == 0:
            cp.note = "the pilot's paired effects are identical: sd 0, the plan is meaningless until seeds differ"
        claim_plans.append(cp)

    seconds = seconds_per_run(tables.results)
    if not seconds:
        warnings.append("no train_seconds in the pilot's results.csv: compute hours unknown")
    scale = run_time_scale(tables.study, protocol)
    if scale is not None and scale != 1.0:
        seconds = {v: t * scale for v, t in seconds.items()}
        warnings.append(f"hours scaled x{scale:.2f} from the pilot's protocol to the planned one (time ~ epochs x pixels)")
    plan = Plan(pilot=str(pilot_dir), baseline=baseline, seeds=int(seeds), alpha=alpha, sd_confidence=sd_confidence,
                design=design.to_dict(), seconds_per_run=seconds, claims=claim_plans, hypotheses=[],
                skipped=skipped, warnings=warnings, max_n=int(max_n))
    for variant in variants:
        parts = [cp for cp in claim_plans if cp.variant == variant]
        plan.hypotheses.append(_plan_hypothesis(variant, parts, effects_by_claim, design, fixed_design, alpha_h,
                                                n_sim, rng, plan, max_n))
    return plan


def _claim_key(claim) -> tuple:
    return (claim.variant, claim.metric, tuple(float(b) for b in claim.band), bool(claim.relative))


def image_components(pilot_dir, claims, baseline: str, alpha: float, warnings: list[str], *, analyze) -> dict:
    """Each claim's test-set part of the SE (``se_fixed``) from analyze's seeds x images estimate of the pilot.

    ``analyze``: the orchestrator's ``analysis.analyze``, passed in (planning sits below it and never imports it).
    Empty when the pilot has no per-image confusions (then the plan counts seed noise only, and says so).
    """
    if not claims or not (Path(pilot_dir) / "confusion").is_dir():
        return {}
    try:
        verdicts = analyze(pilot_dir, claims=list(claims), baseline=baseline, alpha=alpha, write=False, n_boot=200)
    except AblateError as exc:
        warnings.append(f"test-set component not estimated ({exc}): the plan counts seed noise only")
        return {}
    out = {}
    for cv in verdicts["claims"]:
        value = cv.get("se_fixed")
        if value is not None and np.isfinite(value) and value > 0:
            key = (cv["variant"], cv["metric"], tuple(float(b) for b in cv["band"]), bool(cv["relative"]))
            out[key] = float(value)
    if out:
        warnings.append("the test-set part of each SE (from the pilot's per-image confusions) is planned as fixed: "
                        "more seeds do not shrink it")
    return out


def run_time_scale(pilot_study: dict, protocol: dict | None) -> float | None:
    """epochs x pixels of ``protocol`` over the pilot's (from its study.json); None when unknown."""
    if not protocol:
        return None
    try:
        p_epochs = float(pilot_study["train"]["epochs"])
        p_h, p_w = pilot_study["image_size"]
        h, w = protocol["image_size"]
        return float(protocol["epochs"]) / p_epochs * (h * w) / (p_h * p_w)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def planning_covariance(parts: list[ClaimPlan], effects_by_claim) -> np.ndarray:
    """Covariance of a hypothesis's claims for simulation: the pilot's correlation, each sd at its bound."""
    if len(parts) == 1:
        return np.array([[parts[0].sd_plan ** 2]])
    series = [pd.Series(effects_by_claim[p.claim][1], index=effects_by_claim[p.claim][0]) for p in parts]
    joint = pd.concat(series, axis=1, join="inner").to_numpy()
    corr = np.corrcoef(joint, rowvar=False) if joint.shape[0] >= 3 else np.eye(len(parts))
    corr = np.nan_to_num(corr, nan=0.0)
    np.fill_diagonal(corr, 1.0)
    sds = np.array([p.sd_plan for p in parts])
    return corr * np.outer(sds, sds)


def simulate_effects(means, cov, n_sim: int, n: int, rng, *, se_fixed=None) -> np.ndarray:
    """[claims, n_sim, n] multivariate normal paired effects; ``se_fixed`` adds one test-set draw per study."""
    means = np.asarray(means, dtype=float)
    draws = np.moveaxis(rng.multivariate_normal(means, cov, size=(n_sim, n), method="eigh"), 2, 0)
    if se_fixed is not None and np.any(np.asarray(se_fixed) > 0):
        draws = draws + np.asarray(se_fixed, dtype=float)[:, None, None] * rng.standard_normal((len(means), n_sim, 1))
    return draws


def _plan_hypothesis(variant, parts, effects_by_claim, design, fixed_design, alpha_h, n_sim, rng, plan,
                     max_n) -> HypothesisPlan:
    hp = HypothesisPlan(variant=variant, claims=[p.claim for p in parts], alpha=alpha_h)
    cov = planning_covariance(parts, effects_by_claim)
    bands = [p.band for p in parts]
    truths = {"band middle": [(b[0] + b[1]) / 2 for b in bands], "pilot estimate": [p.estimate for p in parts]}
    fx = [p.se_fixed for p in parts]
    for name, means in truths.items():
        x = simulate_effects(means, cov, n_sim, design.looks[-1], rng, se_fixed=fx)
        fixed = sequential.simulate_hypothesis(x[:, :, : fixed_design.looks[-1]], bands, fixed_design, se_fixed=fx)
        seq = sequential.simulate_hypothesis(x, bands, design, se_fixed=fx)
        hp.fixed[name] = _shares(fixed["decision"])
        hp.sequential[name] = {**_shares(seq["decision"]), "expected_seeds": float(np.mean(seq["n_used"]))}
    # seeds needed (fixed n, claim as stated): the IUT needs every part, so search n by simulation
    mid = truths["band middle"]
    for target in TARGETS:
        key = f"supported {target:.0%} (fixed n, band middle)"
        if any(p.seeds_needed.get(key) is None for p in parts):  # a part that cannot be settled sinks the whole
            hp.seeds_needed[key] = None
            continue
        hp.seeds_needed[key] = _search_n(
            lambda n: _shares(sequential.simulate_hypothesis(
                simulate_effects(mid, cov, 4000, n, rng, se_fixed=fx), bands,
                sequential.SequentialDesign((n,), alpha=alpha_h, t_method="level"), se_fixed=fx)["decision"])["supported"],
            target, start=max(p.seeds_needed.get(f"supported {target:.0%} (fixed n, band middle)") or 2
                              for p in parts), max_n=max_n)
    hp.hours = {"budget": plan.hours(plan.seeds, [variant]),
                "until-settled, expected (band middle)": plan.hours(
                    hp.sequential["band middle"]["expected_seeds"], [variant]),
                **{f"{k}": plan.hours(v, [variant]) for k, v in hp.seeds_needed.items()}}
    return hp


def _shares(decisions) -> dict:
    d = np.asarray(decisions)
    sup, ref = float(np.mean(d == "supported")), float(np.mean(d == "refuted"))
    return {"supported": sup, "refuted": ref, "settled": sup + ref}


def _search_n(prob, target: float, *, start: int, max_n: int) -> int | None:
    # the hypothesis needs at least as many seeds as its hardest part; step up from there
    n = max(2, int(start))
    while n <= max_n:
        if prob(n) >= target:
            return n
        n = n + max(1, n // 10)
    return None


# --------------------------------------------------------------------------- text


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.0f} %"


def _hours(h: float) -> str:
    return "n/a" if not np.isfinite(h) else (f"{60 * h:.0f} min" if h < 1 else f"{h:.1f} h")


def format_plan(plan: Plan) -> str:
    """The plan as text for the terminal."""
    lines = [f"plan from pilot {plan.pilot} (baseline {plan.baseline}); budget {plan.seeds} seeds; "
             f"alpha {plan.alpha} (Bonferroni over {len(plan.hypotheses)} hypotheses); sd planned at its "
             f"{plan.sd_confidence:.0%} upper confidence bound"]
    lines.append(f"--until-settled design: looks at {plan.design['looks'][:6]}{'...' if len(plan.design['looks']) > 6 else ''}, "
                 f"{plan.design['spending']} spending")
    for cp in plan.claims:
        lines.append("")
        lines.append(f"claim {cp.claim}: pilot {cp.n_pilot} seeds, effect {cp.estimate:+.4f}, sd {cp.sd:.4f} "
                     f"(planned {cp.sd_plan:.4f}) on the test scale"
                     + (f"; test-set SE {cp.se_fixed:.4f} (fixed)" if cp.se_fixed else ""))
        for name in ("band middle", "pilot estimate"):
            f, s = cp.fixed[name], cp.sequential[name]
            lines.append(f"  true effect = {name}: at {cp.seeds} seeds P(supported) {_pct(f['supported'])}, "
                         f"P(refuted) {_pct(f['refuted'])}; --until-settled P(settled) {_pct(s['settled'])} "
                         f"using {s['expected_seeds']:.1f} seeds on average")
        need = ", ".join(f"{k}: {v if v is not None else f'> {plan.max_n}'}" for k, v in cp.seeds_needed.items())
        lines.append(f"  seeds needed: {need}")
        width = format_effect(cp.smallest_band, cp.metric, relative=cp.relative, test_scale=True, signed=False)
        lines.append(f"  narrowest band {cp.seeds} seeds settle (80 %): {width} wide")
        if cp.note:
            lines.append(f"  note: {cp.note}")
    for hp in plan.hypotheses:
        lines.append("")
        lines.append(f"hypothesis {hp.variant} ({' AND '.join(hp.claims)}):")
        for name in ("band middle", "pilot estimate"):
            f, s = hp.fixed[name], hp.sequential[name]
            lines.append(f"  true effect = {name}: at {plan.seeds} seeds P(supported) {_pct(f['supported'])}, "
                         f"P(settled) {_pct(f['settled'])}; --until-settled P(settled) {_pct(s['settled'])}, "
                         f"{s['expected_seeds']:.1f} seeds on average")
        for k, v in hp.seeds_needed.items():
            hours = hp.hours.get(k, math.nan)
            lines.append(f"  seeds for {k}: {v if v is not None else f'> {plan.max_n}'}"
                         + (f" (~{_hours(hours)})" if np.isfinite(hours) else ""))
        if np.isfinite(hp.hours.get("budget", math.nan)):
            lines.append(f"  compute: {_hours(hp.hours['budget'])} for the budget, "
                         f"~{_hours(hp.hours['until-settled, expected (band middle)'])} expected with --until-settled")
    for s in plan.skipped:
        lines.append(f"not planned: {s}")
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
