"""Numbers as text, and the sentences the report builds from verdicts.json (never from prose).

Pure functions over the verdicts dict; the templates call them as filters.
"""

from __future__ import annotations

import math

from ablate.rundir.metrics import format_band, format_effect, metric


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x, fmt: str = ".3f") -> str:
    return format(x, fmt) if finite(x) else "—"


def pct(x, fmt: str = "+.1f") -> str:
    return f"{100 * x:{fmt}} %" if finite(x) else "—"


def pvalue(x) -> str:
    if not finite(x):
        return "—"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def interval(value) -> list | None:
    """``[lo, hi]`` from a pair or a dict of named intervals (bca, t, percentile); None when not finite."""
    if isinstance(value, dict):
        value = next((value[k] for k in ("bca", "t", "percentile", *value) if value.get(k) is not None), None)
    if not value or len(value) != 2 or not all(finite(v) for v in value):
        return None
    return [float(value[0]), float(value[1])]


def ci_text(ci, scale: float = 100.0, fmt: str = "+.1f") -> str:
    ci = interval(ci)
    return f" [{scale * ci[0]:{fmt}}, {scale * ci[1]:{fmt}}]" if ci else ""


def metric_name(name: str) -> str:
    return metric(name).label


def band_text(claim: dict) -> str:
    band = claim.get("band")
    if not band:
        return "—"
    return format_band(band, claim["metric"], relative=bool(claim.get("relative")))


def verdict_text(item: dict) -> str:
    verdict = item.get("verdict") or "inconclusive"
    return f"{verdict} ({item['direction']})" if item.get("direction") else verdict


def claim_effects(claim: dict) -> tuple[str, str]:
    """(relative % with CI, absolute with CI) of one claim, each '—' when unknown: both from the claim's own
    estimator and interval level (an absolute claim's relative column is its ``estimate_rel``/``ci_rel``)."""
    metric = claim["metric"]
    if claim.get("relative"):
        rel, rel_ci = claim.get("estimate"), claim.get("ci")
    else:
        rel, rel_ci = claim.get("estimate_rel"), claim.get("ci_rel")
    absolute, abs_ci = claim.get("estimate_abs"), claim.get("ci_abs")
    if absolute is None and not claim.get("relative"):
        absolute, abs_ci = claim.get("estimate"), claim.get("ci")
    return (format_effect(rel, metric, relative=True, ci=interval(rel_ci)),
            format_effect(absolute, metric, relative=False, ci=interval(abs_ci)))


def effect_text(claim: dict) -> str:
    """The claim's effect in its own unit with its verdict interval: '+7.3 % [-0.3, +15.5]'."""
    estimate = claim.get("estimate")
    if not finite(estimate):
        return "no estimate"
    return format_effect(estimate, claim["metric"], relative=bool(claim.get("relative")), ci=interval(claim.get("ci")))


def posterior_text(claim: dict) -> str:
    """P(below / inside / above the band) of the Bayesian reading, when verdicts.json has one."""
    post = claim.get("posterior") or claim.get("bayes") or {}
    keys = ("below", "inside", "above")
    values = [post.get(k, post.get(f"p_{k}")) for k in keys]
    if not all(finite(v) for v in values):
        return "—"
    return " / ".join(f"{v:.2f}" for v in values)


def claims_in_order(verdicts: dict) -> list[dict]:
    """The claims grouped by hypothesis (in the hypotheses' order), each group in its own order."""
    claims = verdicts.get("claims") or []
    order = [h.get("variant") for h in verdicts.get("hypotheses") or []]
    order += [c.get("variant") for c in claims if c.get("variant") not in order]
    return sorted(claims, key=lambda c: order.index(c.get("variant")))


def hypotheses(verdicts: dict) -> list[dict]:
    """verdicts.json's hypotheses, each with its parts (claims); without any, each variant's claims grouped."""
    claims = verdicts.get("claims") or []
    given = verdicts.get("hypotheses")
    if given:
        return [{**h, "parts": [c for c in claims if c.get("claim") in (h.get("claims") or [])
                                or (not h.get("claims") and c.get("variant") == h.get("variant"))]}
                for h in given]
    grouped: dict[str, list] = {}
    for claim in claims:
        grouped.setdefault(claim["variant"], []).append(claim)
    return [{"variant": v, "verdict": None, "parts": parts} for v, parts in grouped.items()]


HYPOTHESIS_WORDS = {"supported": "supported", "refuted": "refuted", "inconclusive": "not settled"}


def part_text(claim: dict, *, with_verdict: bool = False) -> str:
    """'mIoU +7.3 % [-0.3, +15.5] (claimed +2..+3 %: larger than claimed)'."""
    reading = claim.get("reading")
    said = [reading] if reading and reading not in ("overlaps the band",) else []
    if with_verdict:
        said.append(verdict_text(claim))
    settle = claim.get("seeds_to_settle")
    if claim.get("verdict") == "inconclusive" and isinstance(settle, int) and settle > (claim.get("n") or 0):
        said.append(f"about {settle} {claim.get('n_unit') or 'seeds'} would settle it")
    return (f"{metric_name(claim['metric'])} {effect_text(claim)} (claimed {band_text(claim)}"
            f"{': ' + ', '.join(said) if said else ''})")


def hypothesis_sentence(h: dict) -> str:
    """'skip_fused: not settled — mIoU +7.3 % [-0.3, +15.5] (claimed +2..+3 %: larger than claimed), speed ...'."""
    verdict = h.get("verdict")
    if verdict is None:  # no hypothesis verdict in verdicts.json: say each part's own
        return f"{h['variant']}: " + ", ".join(part_text(c, with_verdict=True) for c in h["parts"])
    parts = ", ".join(part_text(c) for c in h["parts"])
    why = ""
    if verdict == "inconclusive" and all(c.get("verdict") == "supported" for c in h["parts"]) \
            and finite(h.get("p_supported_holm")):
        # every part alone is supported; the hypothesis misses only after multiplicity: say so
        why = (f" (each part alone is supported, but the hypothesis's p = {h['p_supported_holm']:.3g} after Holm "
               f"across {h.get('n_hypotheses')} hypotheses)")
    return f"{h['variant']}: {HYPOTHESIS_WORDS.get(verdict, verdict)}{why} — {parts}"


def answer(verdicts: dict) -> str:
    """The report's opening paragraph: what was run, then the study's question answered, one hypothesis at a time."""
    return run_sentence(verdicts) + findings(verdicts)


def run_sentence(verdicts: dict) -> str:
    """'What was run: ...' (preset, data and layout, image size, encoder weights), with a caution when the run
    cannot speak for a real claim (synthetic data or random init); '' when the run directory records none of it."""
    env = verdicts.get("environment") or {}
    parts = []
    if env.get("preset"):
        parts.append(f"preset {env['preset']}")
    if env.get("data"):
        data = "synthetic scenes" if env["data"] == "synthetic" else f"{env['data']} data"
        parts.append(data + (f" ({env['layout']} layout)" if env.get("layout") else ""))
    size = env.get("image_size")
    if size and not isinstance(size, list):
        parts.append(f"{str(size).replace('x', '×')} images")
    weights = env.get("pretrained")  # results.csv says "none" for random init
    random_init = str(weights).lower() == "none"
    if weights not in (None, ""):
        parts.append("encoder from random init" if random_init else f"encoder weights {weights}")
    if not parts:
        return ""
    text = "What was run: " + ", ".join(parts) + "."
    if env.get("data") == "synthetic" or random_init:
        text += (" These numbers check that the pipeline works on this setup; they are not evidence about the "
                 "claims on real data with pretrained weights.")
    return text + " "


def findings(verdicts: dict) -> str:
    """The study's question answered, one hypothesis at a time."""
    baseline = verdicts.get("baseline")
    hyps = [h for h in hypotheses(verdicts) if h["parts"]]
    if not hyps:
        n = len(verdicts.get("comparisons") or [])
        return (f"No claims were stated, so no hypothesis is judged; {n} variant(s) are compared with "
                f"{baseline or 'no named baseline'} below." + accuracy_cost_sentence(verdicts))
    level = 100 * (1 - 2 * verdicts["alpha"])
    units = {}
    for h in hyps:
        for c in h["parts"]:
            if c.get("n"):
                units.setdefault(c.get("n_unit") or "seeds", set()).add(c["n"])
    bases = {c.get("baseline") for h in hyps for c in h["parts"] if c.get("baseline")}
    if len(bases) > 1:  # e.g. a budgets study: each budget's variant against that budget's baseline
        baseline = "each claim's own baseline (" + ", ".join(sorted(bases)) + ")"
    lead = f"Does each variant buy what is claimed against {baseline}?" if baseline else (
        "Does each variant buy what is claimed? (no baseline named)")
    sentences = "; ".join(hypothesis_sentence(h) for h in hyps)
    over = ", ".join(f"{'/'.join(map(str, sorted(ns)))} paired {unit}" for unit, ns in units.items())
    family = len(verdicts.get("hypotheses") or [])
    tail = f"Brackets are {level:g} % intervals (the verdicts'), changes relative to {baseline}"
    tail += f", over {over}" if over else ""
    tail += f"; hypotheses Holm-corrected across {family}" if family > 1 else ""
    return (f"{lead} {sentences}. {tail}." + budget_sentence(verdicts) + looks_sentence(verdicts)
            + accuracy_cost_sentence(verdicts))


def accuracy_cost_sentence(verdicts: dict) -> str:
    """' Most accurate: X (P = ..); worth their cost: ...' for a many-variant study, or ''."""
    section = verdicts.get("accuracy_cost") or {}
    if not section.get("available") or not section.get("most_accurate"):
        return ""
    best = section["most_accurate"]
    p_best = section["variants"][best].get("p_most_accurate")
    runner = sorted(((r.get("p_most_accurate") or 0, v) for v, r in section["variants"].items() if v != best),
                    reverse=True)
    text = f" Most accurate: {best} (P = {100 * p_best:.0f} % over seeds × test images"
    text += f"; next {runner[0][1]}, {100 * runner[0][0]:.0f} %)." if runner and runner[0][0] > 0.005 else ")."
    fronts = section.get("pareto") or {}
    for cost, label in (("gflops", "GFLOPs"), ("fps", "measured throughput")):
        if fronts.get(cost):
            text += f" Worth their {label} (Pareto front): {', '.join(fronts[cost])}."
    return text


def budget_sentence(verdicts: dict) -> str:
    """' Across training budgets: ...' (analysis.sections.budgets' headline per claim; flips first), or ''."""
    claims = (verdicts.get("budgets") or {}).get("claims") or []
    if not claims:
        return ""
    ordered = sorted(claims, key=lambda c: not c.get("flips"))
    return " Across training budgets: " + "; ".join(c.get("headline") or c["claim"] for c in ordered) + "."


def looks_sentence(verdicts: dict) -> str:
    """When and why an --until-settled study stopped, with its sequential decisions, or ''."""
    record = verdicts.get("until_settled")
    if not record or not record.get("design"):
        return ""
    from analysis.sequential.gate import stopped_early

    looks = record.get("looks") or []
    planned = record["design"]["looks"][-1]
    decisions = ", ".join(f"{v} {d}" for v, d in (record.get("decisions") or {}).items())
    if stopped_early(record):
        when = f"stopped early, at {looks[-1]['n']} of at most {planned} complete seed pairs"
    elif record.get("stopped"):
        when = f"did not stop early ({len(looks)} look(s), up to {looks[-1]['n'] if looks else 0} pairs)"
    else:
        when = "is still running"
    return (f" Adaptive seeding (--until-settled) {when}: {record.get('stop_reason')}; sequential decision "
            f"(group-sequential, level alpha): {decisions or 'none yet'}.")


def why_text(item: dict) -> str:
    """Why this verdict and, when inconclusive, what would settle it (verdicts.json's own sentences)."""
    return item.get("reason") or ""
