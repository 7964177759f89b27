"""The claim engine: one estimator per claim, one verdict rule, one hypothesis rule, one wording.

``evaluate(claims, data, baseline=..., alpha=...)`` returns ``(hypotheses, claims)`` as
``analysis.verdicts.records`` records. The rule (``METHODS`` in ``analysis.estimators.effects`` says why):

* a claim is *supported* iff its TOST p <= alpha ((1 - 2 alpha) CI inside the band) and *refuted*
  iff its two-sided (1 - alpha) CI lies wholly outside the band (level alpha overall);
* a hypothesis (the claims on one variant) is supported iff every part is (intersection-union,
  p = max of the parts' TOST p), refuted iff a part is (Holm within it); Holm across hypotheses.

``Claim`` and its parser/validator live in ``ablate.study.claim`` and are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ablate.rundir.metrics import format_band, format_effect, format_interval, is_latency, metric
from ablate.study.claim import Claim, ClaimError, as_claim, format_claim, parse_claim, validate_claim  # noqa: F401
from analysis.estimators.effect_sizes import effect_sizes
from analysis.estimators.effects import (
    EffectEstimate,
    holm,
    launch_effect,
    seed_effect,
    two_way_effect,
)
from analysis.verdicts.records import ClaimVerdict, HypothesisVerdict, Verdict

TARGET = 0.8  # probability the planning figures aim for


# --------------------------------------------------------------------------- the data a claim needs


@dataclass
class ClaimData:
    """What the estimators read: seed rows (``tables.seed_rows``), the claim-setting latency rows
    (``tables.claim_latency_rows``) and a loader of per-image confusions by run_id."""

    seeds: object  # pandas.DataFrame
    latency: object = None  # pandas.DataFrame of the claim setting, or None
    latency_setting: dict = field(default_factory=dict)
    latency_reason: str | None = None
    load_confusion: object = None  # run_id -> per-image [N, C, C] array, or None when missing
    warnings: list = field(default_factory=list)


def hypothesis_id(variant: str, baseline: str | None) -> str:
    return f"{variant} vs {baseline}"


# --------------------------------------------------------------------------- estimation


def estimate_claim(claim: Claim, baseline: str, data: ClaimData) -> tuple[EffectEstimate | None, dict, str | None]:
    """(estimate on the test scale, extras, reason when none): the one estimator for this claim's metric."""
    if is_latency(claim.metric):
        return _fps_estimate(claim, baseline, data)
    return _seed_estimate(claim, baseline, data)


def _seed_estimate(claim, baseline, data):
    from analysis.run_reader import paired_frame, unpaired_seeds

    seeds = data.seeds
    if seeds is None or len(seeds) == 0:
        return None, {}, "no finished seed runs in results.csv"
    if claim.metric not in seeds.columns:
        return None, {}, f"results.csv has no column '{claim.metric}'"
    pairs = paired_frame(seeds, claim.variant, baseline, claim.metric)
    extras = {"unpaired": unpaired_seeds(seeds, claim.variant, baseline), "seeds": [int(s) for s in pairs["seed"]]}
    v, b = pairs["variant"].to_numpy(float), pairs["baseline"].to_numpy(float)
    extras["effect_sizes"] = effect_sizes(v, b)
    extras["abs"] = seed_effect(v, b, relative=False)
    if len(pairs) < 2:
        return None, extras, f"only {len(pairs)} paired seed(s) of {claim.variant} and {baseline}: at least 2 are needed"
    if claim.relative and not (np.all(v > 0) and np.all(b > 0)):
        return None, extras, f"a relative claim needs positive values of '{claim.metric}'"
    est = seed_effect(v, b, relative=claim.relative)
    positive = bool(np.all(v > 0) and np.all(b > 0))
    if not claim.relative and positive:  # the report's relative column of an absolute claim: the same estimator
        extras["rel"] = seed_effect(v, b, relative=True)
    if metric(claim.metric).from_confusions:
        two_way = _two_way(claim, baseline, pairs["seed"].tolist(), data)
        if two_way is not None:
            est, extras["abs"], rel = two_way
            if not claim.relative and positive:
                extras["rel"] = rel
    return est, extras, None


def _two_way(claim, baseline, seeds_list, data):
    """Seeds x images estimates (claim scale, absolute), or None (with a warning) without confusions."""
    if data.load_confusion is None:
        data.warnings.append(f"{format_claim(claim)}: no per-image confusions: its interval covers seeds only, "
                             "not the finite test set")
        return None
    rows = data.seeds.set_index(["variant", "seed"])["run_id"]
    cms_v, cms_b = [], []
    for seed in seeds_list:
        cv = data.load_confusion(str(rows.get((claim.variant, seed))))
        cb = data.load_confusion(str(rows.get((baseline, seed))))
        if cv is None or cb is None or cv.shape != cb.shape:
            data.warnings.append(f"{format_claim(claim)}: per-image confusions missing or not over the same images "
                                 f"for seed {seed}: its interval covers seeds only, not the finite test set")
            return None
        cms_v.append(cv)
        cms_b.append(cb)
    absolute = two_way_effect(cms_v, cms_b, relative=False)
    relative = two_way_effect(cms_v, cms_b, relative=True)
    return (relative if claim.relative else absolute), absolute, relative


def _fps_estimate(claim, baseline, data):
    if data.latency is None:
        return None, {}, data.latency_reason or "no latency rounds"
    est, notes = launch_effect(data.latency, claim.variant, baseline, relative=claim.relative)
    data.warnings.extend(notes)
    absolute = est if not claim.relative else launch_effect(data.latency, claim.variant, baseline, relative=False)[0]
    extras = {"abs": absolute, "latency_setting": dict(data.latency_setting)}
    extras["effect_sizes"] = effect_sizes(diff=est.values)  # per launch: no arms, so no g_av or Cliff's delta
    if est.n < 2:
        return None, extras, (notes[-1].split(": ", 1)[1] if notes else
                              f"only {est.n} latency {est.unit} of {claim.variant} and {baseline}: at least 2 are needed")
    return est, extras, None


# --------------------------------------------------------------------------- the verdict rule


def band_on_test_scale(claim: Claim) -> tuple[float, float]:
    """The band on the test scale (log ratios for relative claims)."""
    lo, hi = claim.band
    return (math.log1p(lo), math.log1p(hi)) if claim.relative else (lo, hi)


def band_direction(band) -> int:
    """+1 for a claimed increase (lo >= 0), -1 for a decrease (hi <= 0), 0 for a band around 0."""
    lo, hi = band
    return 1 if lo >= 0 else (-1 if hi <= 0 else 0)


def decide(est: EffectEstimate, band_x, alpha: float) -> tuple[Verdict, float, float]:
    """(verdict, TOST p, refute p) of one estimate against a band on the test scale, at level alpha."""
    p_eq = est.tost(*band_x)["p"]
    p_ref = est.refute(*band_x)
    if np.isfinite(p_eq) and p_eq <= alpha:
        return Verdict.SUPPORTED, p_eq, p_ref
    if np.isfinite(p_ref) and p_ref <= alpha:
        return Verdict.REFUTED, p_eq, p_ref
    return Verdict.INCONCLUSIVE, p_eq, p_ref


def reading(ci, band) -> str:
    """What an interval shows about a band, whatever the verdict."""
    a, b = ci
    lo, hi = band
    if not (np.isfinite(a) and np.isfinite(b)):
        return "no data"
    s = band_direction(band)
    if lo <= a and b <= hi:
        return "inside the band"
    if (s == 1 and b < 0) or (s == -1 and a > 0):
        return "opposite direction"
    if a > hi:
        return "larger than claimed" if s >= 0 else "smaller change than claimed"
    if b < lo:
        return "smaller than claimed" if s >= 0 else "larger change than claimed"
    return "overlaps the band"


def refuted_direction(ci, band) -> str:
    """'too small' | 'too large' | 'wrong direction' for an interval wholly outside the band."""
    a, b = ci
    lo, hi = band
    s = band_direction(band)
    if (s == 1 and b < 0) or (s == -1 and a > 0):
        return "wrong direction"
    if b < lo:
        return "too large" if s == -1 else "too small"
    return "too small" if s == -1 else "too large"


# --------------------------------------------------------------------------- one claim


def judge(claim: Claim, baseline: str, est: EffectEstimate | None, extras: dict, reason: str | None, *,
          alpha: float, with_power: bool = True) -> ClaimVerdict:
    """The ClaimVerdict of one claim from its estimate (``None``: inconclusive with ``reason``)."""
    back = math.expm1 if claim.relative else (lambda x: x)
    cv = ClaimVerdict(claim=format_claim(claim), hypothesis=hypothesis_id(claim.variant, baseline),
                      variant=claim.variant, baseline=baseline, metric=claim.metric, band=list(claim.band),
                      relative=claim.relative, ci_level=1 - 2 * alpha,
                      scale="log ratio" if claim.relative else "difference",
                      unpaired=list(extras.get("unpaired", [])),
                      effect_sizes=extras.get("effect_sizes") or effect_sizes())
    absolute = extras.get("abs")
    if absolute is not None and np.isfinite(absolute.estimate):
        cv.estimate_abs, cv.ci_abs = absolute.estimate, absolute.interval(1 - 2 * alpha)
    relative = extras.get("rel")
    if relative is not None and np.isfinite(relative.estimate):
        cv.estimate_rel = math.expm1(relative.estimate)
        cv.ci_rel = [math.expm1(x) for x in relative.interval(1 - 2 * alpha)]
    if est is not None:
        cv.n, cv.n_unit, cv.ci_method = est.n, est.unit, est.method
        cv.test_estimate, cv.se, cv.df, cv.sd, cv.se_fixed = est.estimate, est.se, est.df, est.sd, est.se_fixed
        cv.image_df = est.image_df
        cv.estimate = back(est.estimate)
        cv.details = {"components": est.components, "per_unit": list(est.values),
                      **({"latency_setting": extras["latency_setting"]} if "latency_setting" in extras else {})}
        if est.components.get("image_share") is not None:
            cv.image_share = est.components["image_share"]
    if est is None or not est.ok:
        cv.verdict, cv.reading = Verdict.INCONCLUSIVE, "no data"
        if reason is None and est is not None and est.n >= 2 and est.sd == 0:
            reason = (f"the paired values are identical on every one of the {est.n} {est.unit} (zero variance): "
                      "no interval can be computed; check the runs really differ")
        cv.reason = reason or "no interval could be computed"
        return cv
    band_x = band_on_test_scale(claim)
    ci_x = est.interval(1 - 2 * alpha)
    cv.ci = [back(x) for x in ci_x]
    ci_ref_x = est.interval(1 - alpha)
    cv.ci_refute = [back(x) for x in ci_ref_x]
    s = band_direction(claim.band)
    cv.alternative = {1: "greater", -1: "less", 0: "two-sided"}[s]
    cv.p_superiority = est.superiority(cv.alternative)
    cv.p_superiority_two_sided = est.superiority("two-sided")
    cv.verdict, cv.p_equivalence, cv.p_refute = decide(est, band_x, alpha)
    cv.posterior = est.posterior(*band_x)
    cv.reading = reading(ci_x, band_x)
    if cv.verdict == Verdict.REFUTED:
        cv.direction = refuted_direction(ci_ref_x, band_x)
    if with_power:
        _power(cv, est, band_x, alpha, back)
    cv.reason = _reason(cv, claim, alpha)
    return cv


def _power(cv: ClaimVerdict, est: EffectEstimate, band_x, alpha: float, back) -> None:
    from analysis.estimators import verdict_power

    kw = dict(sd=est.sd, alpha=alpha, se_fixed=est.se_fixed, image_df=est.image_df)
    mid = (band_x[0] + band_x[1]) / 2
    cv.power_effect = back(mid)
    cv.power = verdict_power.verdict_probabilities(mid, n=est.n, band=band_x, **kw)["supported"]
    cv.seeds_needed = verdict_power.seeds_needed(mid, band=band_x, target=TARGET, outcome="supported", **kw)
    cv.seeds_to_settle = verdict_power.seeds_needed(est.estimate, band=band_x, target=TARGET, outcome="settled", **kw)
    width = verdict_power.smallest_settleable_band(n=est.n, target=TARGET, **kw)
    cv.smallest_band = back(est.estimate + width / 2) - back(est.estimate - width / 2) if np.isfinite(width) \
        else math.nan


# --------------------------------------------------------------------------- wording


def _reason(cv: ClaimVerdict, claim: Claim, alpha: float) -> str:
    rel, name = claim.relative, claim.metric
    band = format_band(claim.band, name, relative=rel)
    lvl, lvl2 = f"{(1 - 2 * alpha) * 100:g} %", f"{(1 - alpha) * 100:g} %"
    ci, ci2 = format_interval(cv.ci, name, relative=rel), format_interval(cv.ci_refute, name, relative=rel)
    shows = {"inside the band": f"inside the band: the {lvl} CI {ci} lies inside {band}",
             "opposite direction": f"opposite direction: the {lvl} CI {ci} lies on the other side of 0 from {band}",
             "larger than claimed": f"larger than claimed: the {lvl} CI {ci} lies wholly above the band {band}",
             "smaller than claimed": f"smaller than claimed: the {lvl} CI {ci} lies wholly below the band {band}",
             "larger change than claimed": f"a larger change than claimed: the {lvl} CI {ci} lies wholly below "
                                           f"the band {band}",
             "smaller change than claimed": f"a smaller change than claimed: the {lvl} CI {ci} lies wholly above "
                                            f"the band {band}",
             }.get(cv.reading)
    if shows is None:  # overlaps
        edges = [e for e in claim.band if cv.ci[0] <= e <= cv.ci[1]]
        where = "both edges" if len(edges) == 2 else f"the edge {format_effect(edges[0], name, relative=rel)}" if edges else "the band"
        shows = f"estimate {format_effect(cv.estimate, name, relative=rel)}; the {lvl} CI {ci} straddles {where} of {band}"
    if cv.verdict == Verdict.SUPPORTED:
        return f"{shows} (TOST p = {cv.p_equivalence:.3g} <= {alpha:g})"
    if cv.verdict == Verdict.REFUTED:
        return f"{shows}; the {lvl2} CI {ci2} is wholly outside too (p = {cv.p_refute:.3g} <= {alpha:g}): {cv.direction}"
    unit = cv.n_unit
    why = ""
    if cv.reading not in ("overlaps the band", "inside the band"):
        why = f", but refuting needs the {lvl2} CI {ci2} to clear it (p = {cv.p_refute:.3g} > {alpha:g})"
    return f"{shows}{why}. {_settle(cv, claim, unit)}"


def _settle(cv: ClaimVerdict, claim: Claim, unit: str) -> str:
    width = format_effect(cv.smallest_band, claim.metric, relative=claim.relative, signed=False)
    band_txt = (f"with {cv.n} {unit} only a band about {width} wide can be settled "
                f"({TARGET * 100:.0f} % chance)") if np.isfinite(cv.smallest_band) else ""
    if cv.seeds_to_settle:
        first = (f"about {cv.seeds_to_settle} {unit} would settle it ({TARGET * 100:.0f} % chance by this rule if the effect "
                 f"is as estimated)")
    elif cv.se_fixed > 0 and cv.image_share is not None and cv.image_share > 0.5:
        first = ("more seeds alone cannot settle it: the finite test set's own uncertainty is too wide for the band "
                 "(a larger test set would)")
    else:
        from analysis.estimators.verdict_power import MAX_N  # the furthest seeds_needed looks

        first = f"more than {MAX_N} {unit} would be needed to settle it if the effect is as estimated"
    return f"To settle: {first}; {band_txt}." if band_txt else f"To settle: {first}."


# --------------------------------------------------------------------------- hypotheses


def judge_hypotheses(claims: list[ClaimVerdict], *, alpha: float) -> list[HypothesisVerdict]:
    """One verdict per hypothesis (claims sharing variant and baseline), Holm across hypotheses."""
    groups: dict[str, list[ClaimVerdict]] = {}
    for cv in claims:
        groups.setdefault(cv.hypothesis, []).append(cv)
    out = []
    for hid, parts in groups.items():
        p_eq = [p.p_equivalence for p in parts]
        p_sup = max(p_eq) if all(np.isfinite(p) for p in p_eq) else math.nan
        within = holm([p.p_refute for p in parts])
        p_ref = float(np.nanmin(within)) if np.isfinite(within).any() else math.nan
        out.append(HypothesisVerdict(hypothesis=hid, variant=parts[0].variant, baseline=parts[0].baseline,
                                     text=" and ".join(p.claim.split(" ", 1)[1] for p in parts),
                                     claims=[p.claim for p in parts], p_supported=p_sup, p_refuted=p_ref))
    k = len(out)
    for h, p_sup, p_ref in zip(out, holm([h.p_supported for h in out]), holm([h.p_refuted for h in out])):
        h.n_hypotheses, h.p_supported_holm, h.p_refuted_holm = k, float(p_sup), float(p_ref)
        parts = groups[h.hypothesis]
        if np.isfinite(p_sup) and p_sup <= alpha:
            h.verdict = Verdict.SUPPORTED
        elif np.isfinite(p_ref) and p_ref <= alpha:
            h.verdict = Verdict.REFUTED
            h.refuted_by = [f"{p.claim} ({p.direction})" for p in parts if p.verdict == Verdict.REFUTED]
        h.reason = _hypothesis_reason(h, parts, alpha)
    return out


def _hypothesis_reason(h: HypothesisVerdict, parts: list[ClaimVerdict], alpha: float) -> str:
    shows = "; ".join(f"{p.metric}: {p.reading}" for p in parts)
    holm_txt = f", Holm-adjusted across {h.n_hypotheses} hypotheses" if h.n_hypotheses > 1 else ""
    if h.verdict == Verdict.SUPPORTED:
        how = ("every part's" if len(parts) > 1 else "its") + " interval lies inside its band"
        return f"{shows}. Supported: {how} (intersection-union p = {h.p_supported_holm:.3g}{holm_txt})"
    if h.verdict == Verdict.REFUTED:
        return f"{shows}. Refuted by {', '.join(h.refuted_by) or 'a part'} (p = {h.p_refuted_holm:.3g}{holm_txt})"
    missing = [p.metric for p in parts if p.reading == "no data"]
    if missing:
        return f"{shows}. Inconclusive: no interval for {', '.join(missing)}"
    return (f"{shows}. Inconclusive: intersection-union p = {h.p_supported_holm:.3g} and refute p = "
            f"{h.p_refuted_holm:.3g}, neither <= {alpha:g}{holm_txt}")


# --------------------------------------------------------------------------- entry point


def evaluate(claims, data: ClaimData, *, baseline: str | None, alpha: float = 0.05,
             with_power: bool = True) -> tuple[list[HypothesisVerdict], list[ClaimVerdict]]:
    """Judge every claim and every hypothesis; thin or odd data give inconclusive verdicts, never exceptions."""
    verdicts = []
    for claim in [as_claim(c) for c in claims]:
        base = claim.baseline or baseline
        try:
            if not base:
                est, extras, reason = None, {}, "no baseline: name one (study.json 'baseline' or --baseline)"
            elif base == claim.variant:
                est, extras, reason = None, {}, f"'{claim.variant}' is the baseline itself"
            else:
                est, extras, reason = estimate_claim(claim, base, data)
        except Exception as exc:  # noqa: BLE001 - one odd table must not cost the other verdicts
            est, extras, reason = None, {}, f"could not be evaluated: {type(exc).__name__}: {exc}"
        cv = judge(claim, base, est, extras, reason, alpha=alpha, with_power=with_power)
        if cv.unpaired:
            cv.reason += f" ({len(cv.unpaired)} unpaired seed(s) dropped)"
        verdicts.append(cv)
    return judge_hypotheses(verdicts, alpha=alpha), verdicts
