"""Verdicts of claims (see ``analysis.stats.METHODS`` for the methods and why).

``Claim`` and its parser live in ``ablate.spec.claims``; they are re-exported here.
"""

from __future__ import annotations

import math

import numpy as np

from ablate.spec.claims import Claim, ClaimError, as_claim, format_claim, parse_claim, validate_claim  # noqa: F401

# --------------------------------------------------------------------------- verdict logic


def band_direction(band) -> int:
    """+1 when the band claims an increase (lo >= 0), −1 a decrease (hi <= 0), 0 when it straddles 0."""
    lo, hi = band
    if lo >= 0:
        return 1
    if hi <= 0:
        return -1
    return 0


def interval_verdict(ci, band) -> tuple[str, str | None]:
    """Verdict of an interval against a band: (``supported``|``refuted``|``inconclusive``, direction).

    Direction (refuted only): ``wrong direction`` when the whole interval is on the other side of 0
    from a one-sided band; otherwise ``too small`` (nearer 0 than the band, or below a band around 0)
    or ``too large``.
    """
    lo, hi = band
    a, b = ci
    if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)):
        return "inconclusive", None
    if lo <= a and b <= hi:
        return "supported", None
    s = band_direction(band)
    if b < lo:  # entirely below the band
        if s == 1 and b < 0:
            return "refuted", "wrong direction"
        return "refuted", ("too large" if s == -1 else "too small")
    if a > hi:  # entirely above the band
        if s == -1 and a > 0:
            return "refuted", "wrong direction"
        return "refuted", ("too small" if s == -1 else "too large")
    return "inconclusive", None


# --------------------------------------------------------------------------- evaluation

_FAMILIES = ("p_superiority", "p_equivalence", "p_refute")

#: The fields of one claim result of :func:`evaluate_claims` (verdicts.json "claims"); NaN is written as null.
CLAIM_RESULT_FIELDS: dict[str, str] = {
    "claim": "the claim as text, e.g. 'skip_fused miou +2%..+3%' (parse_claim reads it back)",
    "variant": "the variant the claim is about",
    "baseline": "the variant it is compared with",
    "metric": "'miou', 'fps' or another results.csv column",
    "band": "[lo, hi]: claimed range of the effect (fractions: 0.02 = +2 % when relative)",
    "relative": "true: the band bounds variant/baseline - 1; false: variant - baseline in the metric's units",
    "n": "paired seeds (paired latency rounds for fps) used",
    "n_unit": "'seeds' or 'rounds'",
    "estimate": "effect on the claim's scale: geometric-mean ratio - 1 (relative), mean difference (absolute); "
                "fps: ratio of summed times - 1, or fps difference",
    "ci": "(1 - 2 alpha) interval of the estimate, the one the verdict uses",
    "ci_level": "1 - 2 alpha",
    "ci_method": "how 'ci' was computed (paired t on log ratios / differences; BCa bootstrap over rounds)",
    "estimate_abs": "mean difference in the metric's units (fps: images/s)",
    "ci_abs": "(1 - 2 alpha) interval of estimate_abs",
    "alternative": "direction of the superiority test: 'greater', 'less' or 'two-sided' (band around 0)",
    "p_superiority": "one-sided paired t-test p of 'no effect' in the band's direction (unadjusted)",
    "p_superiority_holm": "p_superiority, Holm-adjusted across all claims",
    "p_superiority_two_sided": "two-sided paired t-test p (unadjusted)",
    "p_equivalence": "TOST p that the effect lies inside the band (unadjusted)",
    "p_equivalence_holm": "p_equivalence, Holm-adjusted across all claims",
    "p_refute": "one-sided p that the effect lies outside the band beyond the nearer edge (unadjusted)",
    "p_refute_holm": "p_refute, Holm-adjusted across all claims",
    "effect_sizes": "{d_z, g_av, prob_improvement} (fps: over rounds, on throughput)",
    "sd": "sd of the paired values on the test scale (log ratios for relative claims)",
    "power": "power at the current n for the smallest claimed effect (TOST power at the band's midpoint for "
             "bands around 0)",
    "power_effect": "the effect 'power' refers to, on the claim's scale",
    "mde": "minimum detectable effect at 80 % power with the current n, on the claim's scale",
    "seeds_needed": "paired seeds (rounds) for 80 % power at power_effect",
    "power_tost": "TOST power at the current n if the true effect were the band's midpoint",
    "seeds_needed_tost": "paired seeds for 80 % TOST power at the band's midpoint",
    "seeds_to_settle": "paired seeds for the verdict interval to clear the nearer band edge, if mean and sd stay",
    "unpaired": "seeds present for only one of the two variants (dropped)",
    "details": "paired_effect (seeds) or throughput_ratio + latency_setting (fps) outputs",
    "verdict": "'supported' | 'refuted' | 'inconclusive'",
    "direction": "refuted only: 'too small' | 'too large' | 'wrong direction'; else null",
    "reason": "one sentence: why this verdict (or why none could be reached)",
}


def _fmt(x: float, relative: bool) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x * 100:+.2f}%" if relative else f"{x:+.4g}"


def _fmt_ci(ci, relative: bool) -> str:
    return f"[{_fmt(ci[0], relative)}, {_fmt(ci[1], relative)}]"


def _seed_values(seeds, metric: str):
    """(table seed × variant of ``metric``, reason): seed-phase, ok, test-split rows; duplicates averaged."""
    import pandas as pd

    if seeds is None or len(seeds) == 0:
        return None, "no finished seed runs in the results table"
    df = seeds
    for col in ("variant", "seed"):
        if col not in df.columns:
            return None, f"the results table has no '{col}' column"
    if "status" in df.columns:
        df = df[df["status"].astype(str) == "ok"]
    if "phase" in df.columns and (df["phase"] == "seed").any():
        df = df[df["phase"] == "seed"]
    if "split" in df.columns and (df["split"] == "test").any():
        df = df[df["split"] == "test"]
    if len(df) == 0:
        return None, "all runs failed or none finished (no rows with status 'ok')"
    if metric not in df.columns:
        return None, f"the results table has no column '{metric}'"
    vals = pd.to_numeric(df[metric], errors="coerce")
    table = (
        pd.DataFrame({"variant": df["variant"].astype(str).to_numpy(), "seed": df["seed"].to_numpy(),
                      "value": vals.to_numpy()})
        .groupby(["seed", "variant"])["value"].mean()
        .unstack("variant")
    )
    return table, None


def _latency_pairs(latency, variant: str, baseline: str, batch: int):
    """(variant_ms, baseline_ms, setting dict, reason) paired by round for one latency setting."""
    import pandas as pd

    if latency is None or len(latency) == 0:
        return None, None, {}, "no latency measurements (latency.csv is missing or empty)"
    need = {"variant", "round", "ms_per_image"}
    missing = need - set(latency.columns)
    if missing:
        return None, None, {}, f"the latency table lacks column(s) {sorted(missing)}"
    df = latency.copy()
    df["variant"] = df["variant"].astype(str)
    df["ms_per_image"] = pd.to_numeric(df["ms_per_image"], errors="coerce")
    df = df[df["variant"].isin([variant, baseline])]
    for name in (variant, baseline):
        if not (df["variant"] == name).any():
            return None, None, {}, f"no latency rounds for '{name}'"
    setting_cols = [c for c in ("batch", "height", "width", "dtype", "threads", "device") if c in df.columns]
    if "batch" in df.columns:
        both = set(df.loc[df.variant == variant, "batch"]) & set(df.loc[df.variant == baseline, "batch"])
        if not both:
            return None, None, {}, "the variant and the baseline were timed at different batch sizes"
        use = batch if batch in both else min(both)
        df = df[df["batch"] == use]
    setting = {}
    if setting_cols:
        groups = []
        for key, g in df.groupby(setting_cols, dropna=False, sort=True):
            if set(g["variant"]) >= {variant, baseline}:
                groups.append((key, g))
        if not groups:
            return None, None, {}, "the variant and the baseline were never timed with the same settings"
        key, df = groups[0]
        key = key if isinstance(key, tuple) else (key,)
        setting = dict(zip(setting_cols, key))
    table = df.groupby(["round", "variant"])["ms_per_image"].mean().unstack("variant")
    table = table[[variant, baseline]].dropna()
    return table[variant].to_numpy(), table[baseline].to_numpy(), setting, None


def _empty_result(claim: Claim, baseline: str | None, alpha: float, reason: str) -> dict:
    lo, hi = claim.band
    return {
        "claim": format_claim(claim), "variant": claim.variant, "baseline": baseline, "metric": claim.metric,
        "band": [lo, hi], "relative": claim.relative, "n": 0, "n_unit": "rounds" if claim.metric == "fps" else "seeds",
        "estimate": math.nan, "ci": [math.nan, math.nan], "ci_level": 1 - 2 * alpha, "ci_method": None,
        "estimate_abs": math.nan, "ci_abs": [math.nan, math.nan],
        "p_superiority": math.nan, "p_superiority_holm": math.nan, "p_superiority_two_sided": math.nan,
        "alternative": None, "p_equivalence": math.nan, "p_equivalence_holm": math.nan,
        "p_refute": math.nan, "p_refute_holm": math.nan,
        "effect_sizes": {"d_z": math.nan, "g_av": math.nan, "prob_improvement": math.nan},
        "power": math.nan, "power_effect": math.nan, "mde": math.nan, "seeds_needed": None,
        "power_tost": math.nan, "seeds_needed_tost": None, "seeds_to_settle": None, "sd": math.nan,
        "unpaired": [], "details": {}, "verdict": "inconclusive", "direction": None, "reason": reason,
        "_ok": False,
    }


def _scale_test(res: dict, x: np.ndarray, claim: Claim, alpha: float, with_power: bool = True) -> None:
    """Fill p-values and power from the per-pair values ``x`` on the test scale (differences or log ratios)."""
    from . import power as _power
    from .stats import one_sample_t, tost_1samp

    lo, hi = claim.band
    lo_x, hi_x = (math.log1p(lo), math.log1p(hi)) if claim.relative else (lo, hi)
    n = int(x.size)
    sd = float(np.std(x, ddof=1)) if n >= 2 else math.nan
    res["sd"] = sd
    s = band_direction(claim.band)
    alt = {1: "greater", -1: "less", 0: "two-sided"}[s]
    res["alternative"] = alt
    res["p_superiority"] = one_sample_t(x, alternative=alt)
    res["p_superiority_two_sided"] = one_sample_t(x)
    tost = tost_1samp(x, lo_x, hi_x)
    res["p_equivalence"] = tost["p"]
    if np.isfinite(tost["p"]):
        res["p_refute"] = min(1 - tost["p_low"], 1 - tost["p_upp"])

    if not with_power:
        return
    # power: the smallest claimed effect is the band edge nearest 0 (one-sided bands)
    mid_x = (lo_x + hi_x) / 2
    back = (lambda z: math.expm1(z)) if claim.relative else (lambda z: z)
    if s == 0:
        edge_x = mid_x
        res["power"] = _power.tost_power(mid_x, sd, n, lo_x, hi_x, alpha=alpha)
        res["seeds_needed"] = _power.tost_seeds_needed(mid_x, sd, lo_x, hi_x, alpha=alpha)
        mde_x = _power.min_detectable_effect(sd, n, alpha=alpha, alternative="two-sided")
        res["mde"] = back(mde_x) if np.isfinite(mde_x) else math.nan
    else:
        edge_x = lo_x if s == 1 else hi_x
        if edge_x == 0:
            edge_x = mid_x
        res["power"] = _power.power_at_n(edge_x, sd, n, alpha=alpha)
        res["seeds_needed"] = _power.seeds_needed(edge_x, sd, alpha=alpha)
        mde_x = _power.min_detectable_effect(sd, n, alpha=alpha)
        res["mde"] = back(s * mde_x) if np.isfinite(mde_x) else math.nan
    res["power_effect"] = back(edge_x)
    res["power_tost"] = _power.tost_power(mid_x, sd, n, lo_x, hi_x, alpha=alpha)
    res["seeds_needed_tost"] = _power.tost_seeds_needed(mid_x, sd, lo_x, hi_x, alpha=alpha)
    m = float(np.mean(x)) if n else math.nan
    res["seeds_to_settle"] = _power.seeds_to_settle(m, sd, lo_x, hi_x, alpha=alpha)


def seed_claim_test(variant, baseline, claim: Claim, *, alpha: float = 0.05, with_power: bool = True) -> dict:
    """The t-based part of a claim's evaluation over paired seeds (fast: no bootstrap).

    ``variant`` / ``baseline`` are paired by position. Returns the claim-dict fields ``n``,
    ``estimate``, ``ci`` ((1 − 2α) t-interval; back-transformed from log ratios for relative claims),
    ``estimate_abs``, ``ci_abs``, p-values (unadjusted), power fields and the CI verdict/direction
    (before any Holm adjustment), plus ``reason`` when something is undefined.
    ``with_power=False`` skips the power fields (for fast simulations).
    """
    from .stats import t_interval

    res = _empty_result(claim, None, alpha, "")
    res["ci_method"] = f"paired t-interval ({(1 - 2 * alpha) * 100:g}%)" + (" on log ratios" if claim.relative else "")
    v = np.asarray(variant, dtype=float).ravel()
    b = np.asarray(baseline, dtype=float).ravel()
    keep = np.isfinite(v) & np.isfinite(b)
    v, b = v[keep], b[keep]
    n = int(v.size)
    res["n"] = n
    if n < 2:
        res["reason"] = f"only {n} paired seed(s): at least 2 are needed for an interval"
        return res
    d = v - b
    res["estimate_abs"] = float(d.mean())
    res["ci_abs"] = list(t_interval(d, confidence=1 - 2 * alpha))
    if claim.relative:
        if not (np.all(v > 0) and np.all(b > 0)):
            res["reason"] = f"a relative claim needs positive values of '{claim.metric}'"
            return res
        x = np.log(v / b)
        res["estimate"] = math.expm1(float(x.mean()))
        ci = t_interval(x, confidence=1 - 2 * alpha)
        res["ci"] = [math.expm1(ci[0]), math.expm1(ci[1])] if np.all(np.isfinite(ci)) else [math.nan, math.nan]
    else:
        x = d
        res["estimate"] = res["estimate_abs"]
        res["ci"] = list(res["ci_abs"])
    _scale_test(res, x, claim, alpha, with_power)
    if not res["sd"] > 0:
        res["reason"] = "the paired differences have zero variance (identical runs?): no interval can be computed"
        return res
    res["verdict"], res["direction"] = interval_verdict(res["ci"], claim.band)
    res["_ok"] = True
    return res


def _holm(results: list[dict]) -> None:
    from .stats import holm

    for key in _FAMILIES:
        adj = holm([r[key] for r in results])
        for r, p in zip(results, adj):
            r[key + "_holm"] = float(p)


def _finish(res: dict, claim: Claim, alpha: float, k: int) -> None:
    """Final verdict (CI + Holm) and the one-sentence reason."""
    _verdict(res, claim, alpha, k)
    if res.get("unpaired"):
        res["reason"] = f"{res['reason']} ({len(res['unpaired'])} unpaired seed(s) dropped)"


def _verdict(res: dict, claim: Claim, alpha: float, k: int) -> None:
    rel = claim.relative
    band = _fmt_ci(claim.band, rel)
    level = f"{(1 - 2 * alpha) * 100:g}%"
    ci = _fmt_ci(res["ci"], rel)
    unit = res["n_unit"]
    if not res["_ok"]:
        res["verdict"], res["direction"] = "inconclusive", None
        return
    verdict, direction = res["verdict"], res["direction"]
    multi = f" across {k} claims" if k > 1 else ""
    if verdict == "supported":
        p = res["p_equivalence_holm"]
        if np.isfinite(p) and p > alpha:
            res["verdict"] = "inconclusive"
            res["reason"] = (f"the {level} CI {ci} lies inside the band {band}, but the Holm-adjusted "
                             f"equivalence p = {p:.3g} > {alpha:g}{multi}")
        else:
            res["reason"] = f"the {level} CI {ci} lies inside the claimed band {band}"
    elif verdict == "refuted":
        p = res["p_refute_holm"]
        if np.isfinite(p) and p > alpha:
            res["verdict"], res["direction"] = "inconclusive", None
            res["reason"] = (f"the {level} CI {ci} lies outside the band {band}, but the Holm-adjusted "
                             f"p = {p:.3g} > {alpha:g}{multi}")
        else:
            where = "below" if res["ci"][1] < claim.band[0] else "above"
            res["reason"] = f"the {level} CI {ci} lies entirely {where} the claimed band {band}: {direction}"
    else:
        edge = claim.band[0] if res["ci"][0] < claim.band[0] <= res["ci"][1] else claim.band[1]
        n_more = res["seeds_to_settle"]
        settle = (f"about {n_more} paired {unit} would settle it if the mean and sd stay as observed"
                  if n_more else "more paired runs are needed")
        pw = res["power"]
        pw_s = f"; power for the smallest claimed effect at n = {res['n']} is {pw:.0%}" if np.isfinite(pw) else ""
        res["reason"] = f"the {level} CI {ci} overlaps the band edge {_fmt(edge, rel)}: {settle}{pw_s}"
    if res["verdict"] != "refuted":
        res["direction"] = None


def evaluate_claims(
    claims,
    seeds,
    latency=None,
    *,
    baseline: str,
    alpha: float = 0.05,
    random_state=0,
    n_resamples: int = 9999,
    latency_batch: int = 1,
) -> list[dict]:
    """Evaluate each claim against the seed-phase results and the latency table; Holm across claims.

    ``claims``: ``Claim`` objects, claim strings or ``Claim.to_dict()`` dicts (bad ones raise
    :class:`ClaimError`). ``seeds``: results rows (``variant``, ``seed``, metric columns; rows with
    ``status`` other than ok are ignored). ``latency``: latency.csv rows (``variant``, ``round``,
    ``batch``, ``ms_per_image``...); fps claims use ``latency_batch`` (else the smallest common batch).
    Returns one JSON-safe dict per claim (fields documented in :data:`CLAIM_RESULT_FIELDS`); data
    problems give verdict ``inconclusive`` with a ``reason``, never an exception.
    """
    from ablate.rundir import json_safe

    from .stats import paired_effect, throughput_ratio

    if isinstance(claims, (str, dict, Claim)):
        claims = [claims]
    claims = [as_claim(c) for c in (claims or [])]
    if not claims:
        return []
    if isinstance(random_state, np.random.Generator):
        rngs = [random_state] * len(claims)
    else:
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(random_state).spawn(len(claims))]
    results = []
    for claim, rng in zip(claims, rngs):
        base = claim.baseline or baseline
        try:
            if not base:
                res = _empty_result(claim, base, alpha, "no baseline: name one (study.json 'baseline' or --baseline)")
            elif base == claim.variant:
                res = _empty_result(claim, base, alpha, f"'{claim.variant}' is the baseline itself")
            elif claim.metric == "fps":
                res = _fps_claim(claim, base, latency, alpha, rng, n_resamples, latency_batch,
                                 throughput_ratio, paired_effect)
            else:
                res = _seed_claim(claim, base, seeds, alpha, rng, n_resamples, paired_effect)
        except Exception as exc:  # noqa: BLE001 - a data problem must not abort the report
            res = _empty_result(claim, base, alpha, f"could not evaluate: {type(exc).__name__}: {exc}")
        res["baseline"] = base
        results.append(res)
    _holm(results)
    for res, claim in zip(results, claims):
        _finish(res, claim, alpha, len(claims))
        res.pop("_ok", None)
    return [json_safe(r) for r in results]


def _seed_claim(claim, base, seeds, alpha, rng, n_resamples, paired_effect) -> dict:
    table, reason = _seed_values(seeds, claim.metric)
    if table is None:
        return _empty_result(claim, base, alpha, reason)
    for name in (claim.variant, base):
        if name not in table.columns or not np.isfinite(table[name].to_numpy(dtype=float)).any():
            what = "baseline" if name == base else "variant"
            return _empty_result(claim, base, alpha, f"no finished runs with a value of '{claim.metric}' for the {what} '{name}'")
    v = table[claim.variant].to_numpy(dtype=float)
    b = table[base].to_numpy(dtype=float)
    both = np.isfinite(v) & np.isfinite(b)
    unpaired = [s.item() if hasattr(s, "item") else s for s in table.index[~both & (np.isfinite(v) | np.isfinite(b))]]
    res = seed_claim_test(v[both], b[both], claim, alpha=alpha)
    res["unpaired"] = unpaired
    if res["n"] >= 1:
        pe = paired_effect(v[both], b[both], alpha=alpha, n_resamples=n_resamples, random_state=rng)
        res["effect_sizes"] = {k: pe[k] for k in ("d_z", "g_av", "prob_improvement")}
        res["details"] = {"paired_effect": pe}
    return res


def _fps_claim(claim, base, latency, alpha, rng, n_resamples, batch, throughput_ratio, paired_effect) -> dict:
    vms, bms, setting, reason = _latency_pairs(latency, claim.variant, base, batch)
    if vms is None:
        return _empty_result(claim, base, alpha, reason)
    res = _empty_result(claim, base, alpha, "")
    keep = (vms > 0) & (bms > 0)
    vms, bms = vms[keep], bms[keep]
    n = int(vms.size)
    res["n"] = n
    res["ci_method"] = f"paired BCa bootstrap over latency rounds ({(1 - 2 * alpha) * 100:g}%)"
    if n < 2:
        res["reason"] = f"only {n} paired latency round(s): at least 2 are needed"
        return res
    tr = throughput_ratio(vms, bms, alpha=2 * alpha, n_resamples=n_resamples, random_state=rng)
    res["estimate_abs"], res["ci_abs"] = tr["fps_diff"], tr["fps_diff_ci"]
    if claim.relative:
        res["estimate"], res["ci"] = tr["rel_change"], tr["rel_ci"]
        x = np.log(bms / vms)
    else:
        res["estimate"], res["ci"] = tr["fps_diff"], tr["fps_diff_ci"]
        x = 1000.0 / vms - 1000.0 / bms
    _scale_test(res, x, claim, alpha)
    pe = paired_effect(1000.0 / vms, 1000.0 / bms, alpha=alpha, n_resamples=0)
    res["effect_sizes"] = {k: pe[k] for k in ("d_z", "g_av", "prob_improvement")}
    res["details"] = {"throughput": tr, "latency_setting": setting}
    if not np.all(np.isfinite(res["ci"])):
        res["reason"] = "no bootstrap interval over latency rounds: " + ("; ".join(tr["notes"]) or "degenerate data")
        return res
    res["verdict"], res["direction"] = interval_verdict(res["ci"], claim.band)
    res["_ok"] = True
    return res
