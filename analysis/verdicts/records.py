"""The verdict records: their fields are the ``verdicts.json`` schema, documented once here.

``ClaimVerdict`` is one claim (one part of a hypothesis); ``HypothesisVerdict`` is the claims
on one variant judged together (intersection-union) with Holm across variants. Both are
plain dataclasses; ``to_dict()`` gives the JSON-safe dict written to ``verdicts.json``
(NaN/inf -> ``null``). Scales: effects on the *claim's* scale are fractions
(``0.02`` = +2 %) for relative claims and metric units for absolute ones; the *test*
scale is the log ratio (relative) or the difference (absolute), where every test,
interval and power figure is computed (``analysis.estimators.effects.EffectEstimate``).

verdicts.json, schema_version 2 (top level)::

    schema_version  2
    run_dir, study, baseline, alpha, seed, n_boot
    hypotheses      list of HypothesisVerdict (one per variant with claims), Holm across them
    claims          list of ClaimVerdict (the parts), each with its hypothesis id
    comparisons     every variant vs the baseline on mIoU, paired by seed (analysis.sections.comparisons)
    variants        per-variant summaries (analysis.sections.variants)
    accuracy_cost   many-variant view (analysis.sections.accuracy_cost): {available, reason?, level, variants:
                     {variant: {miou, ci, se, df, n_seeds, method, params_m, gflops, fps, p_most_accurate}},
                     pareto: {gflops|params_m|fps: [variant on the front]}, most_accurate, p_method}
    test_set        seed x image decomposition of each variant's paired mIoU effect (analysis.sections.test_set)
    latency         latency settings found, the claim setting, per-variant speed and launch-level ratios
    power_curves    list of {label, claim, n, supported, refuted, settled, current_n, effect, sd, se_fixed, band, unit,
                     seeds_needed, max_n, capped}: n runs past seeds_needed, or to max_n (capped: 80 % not
                     reached by analysis.estimators.verdict_power.MAX_N)
    budgets         null, or when study.json declares ``budgets`` (analysis.sections.budgets.budget_section):
                    {budgets: [name], baseline, alpha, claims: [{claim, variant, metric, relative, band (test scale),
                     budgets: [{budget, n, estimate, ci (test scale), p_supported, p_refuted, verdict, direction}]
                     (each taken from the claim verdict at that budget), interaction: {test, formula, seeds, F, df,
                     p, cochran_q, cochran_q_p}, flips, headline, summary}], flips: [claim], text, warnings}
    until_settled   null, or looks.json of an ``ablate run --until-settled`` run as recorded
                    (analysis.sequential.gate): {design, alpha_family, hypotheses, skipped, seeds_scheduled,
                     pairs, looks: [{n, seeds, hypotheses: {variant: {decision, claims: {claim: look}}}}],
                     stopped, stop_reason, decisions}
    warnings        list of str
    environment     how the numbers were made and what analysed them
    report          {dir, markdown, html, plots} when written
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from enum import Enum

from analysis.estimators.effect_sizes import described

SCHEMA_VERSION = 2


class Verdict(str, Enum):
    """The three outcomes; a ``str`` so that ``Verdict.SUPPORTED == "supported"``."""

    SUPPORTED = "supported"
    REFUTED = "refuted"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


def _doc(text: str, default=None, factory=None):
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


NAN = math.nan


@dataclass
class ClaimVerdict:
    """One claim judged on its own (at level alpha, no multiplicity adjustment: that is the hypothesis's job)."""

    claim: str = _doc("the claim as text, e.g. 'skip_fused miou +2%..+3%' (ablate.study.claim.parse_claim reads it)")
    hypothesis: str = _doc("id of the hypothesis this claim is a part of: '<variant> vs <baseline>'")
    variant: str = _doc("the variant the claim is about")
    baseline: str | None = _doc("the variant it is compared with")
    metric: str = _doc("'miou', 'fps' or another numeric results.csv column")
    band: list = _doc("[lo, hi] claimed range of the effect on the claim's scale", factory=list)
    relative: bool = _doc("true: band bounds variant/baseline - 1; false: variant - baseline in metric units", True)
    n: int = _doc("independent units behind the interval: paired seeds, launches (fps), or rounds (fps, old tables)", 0)
    n_unit: str = _doc("'seeds' | 'launches' | 'rounds'", "seeds")
    estimate: float = _doc("the effect on the claim's scale: exp(mean log ratio) - 1 (relative) or mean difference;"
                           " fps: of the per-launch mean log throughput ratios", NAN)
    ci: list = _doc("[lo, hi] (1 - 2 alpha) interval of estimate: the interval TOST and the verdict use",
                    factory=lambda: [NAN, NAN])
    ci_level: float = _doc("1 - 2 alpha", NAN)
    ci_refute: list = _doc("[lo, hi] two-sided (1 - alpha) interval: refuted iff it lies wholly outside the band",
                           factory=lambda: [NAN, NAN])
    ci_method: str | None = _doc("how ci was computed (t on seeds; seeds x images variance components with "
                                 "Satterthwaite df; t on per-launch log ratios)")
    estimate_abs: float = _doc("mean difference in the metric's units (fps: images/s, per-launch means)", NAN)
    ci_abs: list = _doc("(1 - 2 alpha) interval of estimate_abs (same uncertainty model)", factory=lambda: [NAN, NAN])
    estimate_rel: float = _doc("absolute claims: the relative change exp(mean log ratio) - 1 by the same estimator", NAN)
    ci_rel: list = _doc("(1 - 2 alpha) interval of estimate_rel (same uncertainty model)", factory=lambda: [NAN, NAN])
    scale: str = _doc("test scale: 'log ratio' (relative) or 'difference' (absolute)", "log ratio")
    test_estimate: float = _doc("estimate on the test scale", NAN)
    se: float = _doc("standard error of test_estimate (all components)", NAN)
    df: float = _doc("degrees of freedom of the t reference (Satterthwaite when two components)", NAN)
    sd: float = _doc("sd over units (seeds / launches) of the paired values on the test scale", NAN)
    se_fixed: float = _doc("part of se that does not shrink with more seeds (test-set images); 0 when none", 0.0)
    image_df: float | None = _doc("degrees of freedom of se_fixed (Satterthwaite; null: none / infinite)", None)
    image_share: float | None = _doc("share of se^2 due to the finite test set (mIoU with confusions), else null")
    alternative: str | None = _doc("direction of the superiority test: 'greater' | 'less' | 'two-sided'")
    p_superiority: float = _doc("one-sided p of 'no effect' in the band's direction (two-sided for bands around 0)", NAN)
    p_superiority_two_sided: float = _doc("two-sided p of 'no effect'", NAN)
    p_equivalence: float = _doc("TOST p that the effect lies inside the band; supported iff <= alpha", NAN)
    p_refute: float = _doc("p that the effect lies outside the band: 2 x the smaller one-sided p beyond an edge "
                           "(capped at 1); refuted iff <= alpha", NAN)
    effect_sizes: dict = _doc("{name: value} for each of analysis.estimators.effect_sizes.EFFECT_SIZES (NaN where "
                              "undefined, e.g. those needing both arms for a speed claim): " + described(),
                              factory=dict)
    posterior: dict = _doc("{below, inside, above}: posterior probability of the mean paired effect below / inside /"
                           " above the band (Student-t posterior, reference prior, same se and df)", factory=dict)
    power: float = _doc("P(supported) by this verdict rule at the current n if the true effect were the band's "
                        "midpoint (sd and se_fixed as observed)", NAN)
    power_effect: float = _doc("the effect 'power' refers to (band midpoint), claim scale", NAN)
    seeds_needed: int | None = _doc("units (seeds / launches) for P(supported) >= 80 % at the band midpoint")
    seeds_to_settle: int | None = _doc("units for P(supported or refuted) >= 80 % if the true effect were the "
                                       "estimate; null when out of reach")
    smallest_band: float = _doc("width (claim scale, around the estimate) of the narrowest band the current n "
                                "settles as supported with 80 % probability", NAN)
    reading: str | None = _doc("what the data show, whatever the verdict: 'inside the band', 'larger than claimed',"
                               " 'smaller than claimed', 'opposite direction', 'overlaps the band', 'no data'")
    verdict: Verdict = _doc("'supported' | 'refuted' | 'inconclusive' (this claim alone, level alpha)",
                            Verdict.INCONCLUSIVE)
    direction: str | None = _doc("refuted only: 'too small' | 'too large' | 'wrong direction'")
    reason: str = _doc("one or two sentences: what the data show first, then why this verdict / what would settle it",
                       "")
    unpaired: list = _doc("seeds present for one side only (dropped)", factory=list)
    details: dict = _doc("estimator details: uncertainty components, latency setting, per-unit values", factory=dict)

    def to_dict(self) -> dict:
        from ablate.rundir import json_safe

        out = asdict(self)
        out["verdict"] = Verdict(self.verdict).value
        return json_safe(out)


@dataclass
class HypothesisVerdict:
    """The claims on one variant (vs one baseline), judged together.

    Intersection-union: supported iff every part is supported; its p is the largest of the
    parts' TOST p. Refuted iff some part is refuted, with the parts' refute p Holm-adjusted within
    the hypothesis (so a true hypothesis is refuted with probability <= alpha). Both p-values are
    then Holm-adjusted across hypotheses (variants); with one hypothesis no adjustment is made.
    """

    hypothesis: str = _doc("id '<variant> vs <baseline>'")
    variant: str = _doc("the variant")
    baseline: str | None = _doc("the baseline")
    text: str = _doc("the hypothesis in words: its parts joined by 'and'")
    claims: list = _doc("the parts' claim texts (see claims[])", factory=list)
    p_supported: float = _doc("intersection-union p: max of the parts' TOST p", NAN)
    p_supported_holm: float = _doc("p_supported Holm-adjusted across hypotheses (= p_supported when only one)", NAN)
    p_refuted: float = _doc("min of the parts' p_refute after Holm within the hypothesis", NAN)
    p_refuted_holm: float = _doc("p_refuted Holm-adjusted across hypotheses", NAN)
    n_hypotheses: int = _doc("size of the Holm family (hypotheses in this analysis)", 1)
    verdict: Verdict = _doc("'supported' iff p_supported_holm <= alpha; 'refuted' iff p_refuted_holm <= alpha",
                            Verdict.INCONCLUSIVE)
    refuted_by: list = _doc("claim texts of the parts that refute it (with their direction)", factory=list)
    reason: str = _doc("what the parts show, then why this verdict", "")

    def to_dict(self) -> dict:
        from ablate.rundir import json_safe

        out = asdict(self)
        out["verdict"] = Verdict(self.verdict).value
        return json_safe(out)


def schema(cls) -> dict[str, str]:
    """``{field: description}`` of a verdict record (for docs and the report's schema section)."""
    return {f.name: f.metadata.get("doc", "") for f in fields(cls)}


def schema_text() -> str:
    """The whole verdicts.json schema as text: this module's docstring plus both records' fields."""
    head = "verdicts.json, schema_version"
    lines = [head + __doc__.split(head, 1)[1].rstrip()]
    for cls in (HypothesisVerdict, ClaimVerdict):
        lines.append(f"\n{cls.__name__} ({'hypotheses[]' if cls is HypothesisVerdict else 'claims[]'}):")
        lines += [f"    {name:<24}{doc}" for name, doc in schema(cls).items()]
    return "\n".join(lines)
