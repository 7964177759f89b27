"""``ablate plan``: from a pilot run, how many seeds (and hours) settle each claim and hypothesis.

A pilot is any run directory of the same variants with at least 2 paired seeds (``ablate run STUDY
--preset pilot``: 3 seeds). From it, per seed-based claim:

* the sd of the paired effect on the test scale (log ratio for relative claims, difference for
  absolute ones) and its one-sided ``sd_confidence`` (80 %) chi-square upper confidence bound
  sd * sqrt((n - 1) / chi2_{1-conf}(n - 1)): plans use the bound, because 3 seeds' sd is often half
  the truth;
* the probability of each verdict at the budget (``seeds``) by the rule ``analyze`` uses (fixed n:
  ``analysis.estimators.verdict_power``, exact; level alpha per claim, analyze's df rule with the pilot's test-set part and
  its image df, both from analyze's own claim engine on the pilot) and by the ``--until-settled`` design
  (``analysis.sequential``, simulated), for two true effects: the band's middle (the claim as stated)
  and the pilot's estimate; beside it the same figure at the pilot's own sd (the upper bound predicts
  too high in about 20 % of 3-seed pilots and far too low in the median one);
* seeds needed for 80 % / 90 % (supported if the claim is true; settled at the pilot's estimate),
  the narrowest band the budget settles, and the compute that implies (results.csv train_seconds).

Per hypothesis (every claim on one variant, speed included, as analyze's) the verdict is analyze's
intersection-union rule over its claims (``analysis.estimators.verdict_power.hypothesis_rule_probabilities``), simulated
with the pilot's correlation between the seed-based claims; a speed part is judged on the pilot's number
of latency launches whatever the seeds. Multiplicity across the m hypotheses is planned with Bonferroni
(alpha / m), a lower bound of Holm's power. A speed claim the pilot cannot estimate (fewer than two
launches) is listed with the reason.
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
from analysis.run_reader import claim_latency_rows, confusion_loader, load_run, seed_rows
from analysis.verdicts.rules import ClaimData, band_on_test_scale, evaluate

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
    image_df: float = math.inf  # its df (test images - 1): analyze's df rule counts it
    unit: str = "seeds"  # "launches" for speed claims: planned at the pilot's number of launches (``seeds``)
    fixed: dict = field(default_factory=dict)  # true effect name -> verdict probabilities at `seeds`
    fixed_pilot_sd: dict = field(default_factory=dict)  # the same at the pilot's own sd (not its upper bound)
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
    fixed_pilot_sd: dict = field(default_factory=dict)
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
               n_sim: int = 20_000, max_n: int = 1000, random_state: int = 0, protocol: dict | None = None) -> Plan:
    """The plan for ``claims`` (Claim objects or their text) from the pilot run directory ``pilot_dir``.

    ``protocol`` (``{"epochs", "image_size"}`` of the study to plan) rescales the pilot's measured seconds
    per run when the pilot ran a cheaper protocol: time ~ epochs x pixels (said in the warnings).
    The pilot's estimates (test-set part and its df, speed over launches) come from analyze's own claim engine
    (``analysis.verdicts.rules.evaluate``), never the orchestrator.
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
    pilot = pilot_verdicts(tables, rows, claims, baseline, alpha, warnings)
    skipped = [f"{format_claim(c)}: not planned: {pilot[format_claim(c)].reason}" for c in claims
               if is_latency(c.metric) and not _usable(pilot[format_claim(c)])]
    speed_claims = [c for c in claims if is_latency(c.metric) and _usable(pilot[format_claim(c)])]
    variants = sorted({c.variant for c in seed_claims})
    m = max(1, len(variants))
    alpha_h = alpha / m  # Bonferroni across hypotheses: a lower bound of Holm's power
    rng = np.random.default_rng(random_state)
    design = sequential.SequentialDesign.every(max_seeds=max(seeds, first_look), look_every=look_every,
                                               first_look=first_look, alpha=alpha_h, spending=spending)
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
        sd = float(np.std(x, ddof=1))
        cv = pilot[text]
        fx = cv.se_fixed if np.isfinite(cv.se_fixed) else 0.0
        cp = ClaimPlan(claim=text, variant=claim.variant, metric=claim.metric, relative=bool(claim.relative),
                       band=band_on_test_scale(claim), n_pilot=int(x.size), estimate=float(x.mean()), sd=sd,
                       sd_plan=sd_upper_bound(sd, x.size, sd_confidence), seeds=int(seeds), se_fixed=fx,
                       image_df=_image_df(cv))
        _plan_claim(cp, alpha=alpha, design=design, n_sim=n_sim, rng=rng, max_n=max_n)
        claim_plans.append(cp)
    for claim in speed_claims:  # judged on the pilot's number of launches, whatever the seeds
        cv = pilot[format_claim(claim)]
        cp = ClaimPlan(claim=format_claim(claim), variant=claim.variant, metric=claim.metric,
                       relative=bool(claim.relative), band=band_on_test_scale(claim), n_pilot=int(cv.n),
                       estimate=float(cv.test_estimate), sd=float(cv.sd),
                       sd_plan=sd_upper_bound(float(cv.sd), int(cv.n), sd_confidence), seeds=int(cv.n),
                       unit="launches")
        _plan_claim(cp, alpha=alpha, design=None, n_sim=n_sim, rng=rng, max_n=max_n)
        claim_plans.append(cp)
    if any(cp.se_fixed > 0 for cp in claim_plans):
        warnings.append("the test-set part of each SE (from the pilot's per-image confusions) is planned as fixed: "
                        "more seeds do not shrink it")

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
        plan.hypotheses.append(_plan_hypothesis(variant, parts, effects_by_claim, design, alpha_h, n_sim, rng, plan,
                                                max_n))
    return plan


def _usable(cv) -> bool:
    return cv.n >= 2 and np.isfinite(cv.sd) and np.isfinite(cv.test_estimate)


def _image_df(cv) -> float:
    return float(cv.image_df) if cv.image_df is not None and np.isfinite(cv.image_df) else math.inf


def pilot_verdicts(tables, rows, claims, baseline: str, alpha: float, warnings: list[str]) -> dict:
    """claim text -> the pilot's ClaimVerdict by analyze's own claim engine (``analysis.verdicts.rules.evaluate``:
    seeds x images for mIoU when confusions exist, launches for speed); never the orchestrator."""
    latency, setting, reason = claim_latency_rows(tables.latency, tables.study, warnings)
    data = ClaimData(seeds=rows, latency=latency, latency_setting=setting, latency_reason=reason,
                     load_confusion=confusion_loader(tables.confusion_paths, warnings), warnings=[])
    _, verdicts = evaluate(claims, data, baseline=baseline, alpha=alpha, with_power=False)
    return {cv.claim: cv for cv in verdicts}


def _plan_claim(cp: ClaimPlan, *, alpha: float, design, n_sim: int, rng, max_n: int) -> None:
    """A claim's figures by analyze's claim rule (level alpha, its df rule), at the planned sd and the pilot's own."""
    kw = dict(band=cp.band, alpha=alpha, se_fixed=cp.se_fixed, image_df=cp.image_df)
    truths = {"band middle": (cp.band[0] + cp.band[1]) / 2, "pilot estimate": cp.estimate}
    for name, effect in truths.items():
        cp.fixed[name] = power.verdict_probabilities(effect, sd=cp.sd_plan, n=cp.seeds, **kw)
        cp.fixed_pilot_sd[name] = power.verdict_probabilities(effect, sd=cp.sd, n=cp.seeds, **kw)
        if design is not None:
            cp.sequential[name] = sequential.operating_characteristics(
                effect, sd=cp.sd_plan, band=cp.band, design=design, se_fixed=cp.se_fixed, n_sim=n_sim,
                random_state=rng)
    if design is None:
        return
    for target in TARGETS:
        cp.seeds_needed[f"supported {target:.0%} (fixed n, band middle)"] = power.seeds_needed(
            truths["band middle"], sd=cp.sd_plan, target=target, outcome="supported", max_n=max_n, **kw)
        cp.seeds_needed[f"settled {target:.0%} (fixed n, pilot estimate)"] = power.seeds_needed(
            cp.estimate, sd=cp.sd_plan, target=target, outcome="settled", max_n=max_n, **kw)
    cp.smallest_band = power.smallest_settleable_band(sd=cp.sd_plan, n=cp.seeds, alpha=alpha, target=0.8,
                                                      se_fixed=cp.se_fixed, image_df=cp.image_df)
    if cp.sd == 0:
        cp.note = "the pilot's paired effects are identical: sd 0, the plan is meaningless until seeds differ"


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


def _plan_hypothesis(variant, parts, effects_by_claim, design, alpha_h, n_sim, rng, plan, max_n) -> HypothesisPlan:
    hp = HypothesisPlan(variant=variant, claims=[p.claim for p in parts], alpha=alpha_h)
    seeded = [p for p in parts if p.unit == "seeds"]
    cov = planning_covariance(seeded, effects_by_claim)
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov))) if np.all(np.diag(cov) > 0) else None
    bands = [p.band for p in seeded]
    fx = [p.se_fixed for p in seeded]

    def rule(effects, n: int, sd_of, sims: int) -> dict:  # analyze's fixed-n hypothesis rule, every part
        specs = [{"effect": e, "sd": sd_of(p), "n": n if p.unit == "seeds" else p.seeds, "band": p.band,
                  "se_fixed": p.se_fixed, "image_df": p.image_df, "units": p.unit} for p, e in zip(parts, effects)]
        return power.hypothesis_rule_probabilities(specs, alpha=alpha_h, n_sim=sims, corr=corr, random_state=rng)

    truths = {"band middle": [(p.band[0] + p.band[1]) / 2 for p in parts], "pilot estimate": [p.estimate for p in parts]}
    for name, means in truths.items():
        hp.fixed[name] = rule(means, plan.seeds, lambda p: p.sd_plan, n_sim)
        hp.fixed_pilot_sd[name] = rule(means, plan.seeds, lambda p: p.sd, n_sim)
        seed_means = [m for p, m in zip(parts, means) if p.unit == "seeds"]
        x = simulate_effects(seed_means, cov, n_sim, design.looks[-1], rng, se_fixed=fx)
        seq = sequential.simulate_hypothesis(x, bands, design, se_fixed=fx)
        hp.sequential[name] = {**_shares(seq["decision"]), "expected_seeds": float(np.mean(seq["n_used"]))}
    # seeds needed (fixed n, claim as stated): the IUT needs every part, so search n by simulation
    for target in TARGETS:
        key = f"supported {target:.0%} (fixed n, band middle)"
        if any(p.seeds_needed.get(key) is None for p in seeded):  # a part that cannot be settled sinks the whole
            hp.seeds_needed[key] = None
            continue
        hp.seeds_needed[key] = _search_n(lambda n: rule(truths["band middle"], n, lambda q: q.sd_plan, 4000)["supported"],
                                         target, start=max(p.seeds_needed[key] for p in seeded), max_n=max_n)
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


SD_CAVEAT = ("the planned figures use the sd's {conf:.0%} upper confidence bound: from a 3-seed pilot they come out "
             "too high in about 20 % of pilots and far too low in the median one (pilot's own sd in brackets)")


def format_plan(plan: Plan) -> str:
    """The plan as text for the terminal."""
    lines = [f"plan from pilot {plan.pilot} (baseline {plan.baseline}); budget {plan.seeds} seeds; claims at alpha "
             f"{plan.alpha} (as analyze judges them), hypotheses at {plan.alpha}/{max(1, len(plan.hypotheses))} "
             f"(Bonferroni over {len(plan.hypotheses)})",
             "note: " + SD_CAVEAT.format(conf=plan.sd_confidence)]
    lines.append(f"--until-settled design: looks at {plan.design['looks'][:6]}{'...' if len(plan.design['looks']) > 6 else ''}, "
                 f"{plan.design['spending']} spending")
    for cp in plan.claims:
        lines.append("")
        lines.append(f"claim {cp.claim}: pilot {cp.n_pilot} {cp.unit}, effect {cp.estimate:+.4f}, sd {cp.sd:.4f} "
                     f"(planned {cp.sd_plan:.4f}) on the test scale"
                     + (f"; test-set SE {cp.se_fixed:.4f} (fixed)" if cp.se_fixed else ""))
        for name in ("band middle", "pilot estimate"):
            f, own = cp.fixed[name], cp.fixed_pilot_sd[name]
            line = (f"  true effect = {name}: at {cp.seeds} {cp.unit} P(supported) {_pct(f['supported'])} "
                    f"[{_pct(own['supported'])}], P(refuted) {_pct(f['refuted'])} [{_pct(own['refuted'])}]")
            if name in cp.sequential:
                s = cp.sequential[name]
                line += (f"; --until-settled P(settled) {_pct(s['settled'])} using {s['expected_seeds']:.1f} seeds "
                         "on average")
            lines.append(line)
        if cp.unit == "launches":
            lines.append(f"  judged on {cp.seeds} latency launches (the pilot's), whatever the number of seeds")
            continue
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
            f, own, s = hp.fixed[name], hp.fixed_pilot_sd[name], hp.sequential[name]
            lines.append(f"  true effect = {name}: at {plan.seeds} seeds P(supported) {_pct(f['supported'])} "
                         f"[{_pct(own['supported'])}], P(settled) {_pct(f['settled'])} [{_pct(own['settled'])}]; "
                         f"--until-settled P(settled) {_pct(s['settled'])}, {s['expected_seeds']:.1f} seeds on average")
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
