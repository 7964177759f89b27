"""Estimators and tests of paired effects: small pure functions over arrays (no torch).

One interval engine: every estimator returns an :class:`EffectEstimate` (mean paired effect on
the test scale, its standard error and t degrees of freedom); every interval, test p-value and
posterior in ``verdicts.json`` is computed from one of those, so estimate, interval, test and
verdict always describe the same quantity. The estimators:

* :func:`seed_effect`    paired values over seeds (t on differences or log ratios);
* :func:`two_way_effect` seeds x test images, from per-image confusions (variance components);
* :func:`launch_effect`  latency rounds nested in launches (t on per-launch mean log ratios).

Multiplicity: :func:`holm` = ``statsmodels.stats.multitest.multipletests(method="holm")``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special
from scipy import stats as sps

from analysis.estimators.effect_sizes import effect_sizes
from analysis.estimators.pairs import finite_pairs, is_degenerate

METHODS = """\
**Pairing and scale.** Every variant is trained with the baseline's list of seeds, so effects are paired by
seed: per seed the difference variant - baseline (absolute claims) or the log ratio log(variant/baseline)
(relative claims; reported back as exp(mean) - 1, so "+x %" and "-x %" are symmetric where the test works).
Seeds present for one side only are reported and dropped; a resumed run's duplicate rows keep the last.

**One interval per claim.** Each claim's mean paired effect m has a standard error se and t degrees of
freedom df; the (1 - 2 alpha) interval m +- t(1 - alpha, df) se, the TOST p, the refutation p, the
superiority p and the Bayesian reading all use these same three numbers.

**Seeds x test images (mIoU).** Every seed is scored on the same test images, so test-set error does not
shrink with more seeds. From the per-image confusion matrices, each seed's mIoU (a ratio of summed
confusions) and its leave-one-image-out values give jackknife variances over images: V of the seed-mean
effect and v_s of each seed's effect. With S seeds and s^2 the sample variance of the per-seed paired
effects, se^2 = s^2/S + V - (mean v_s - V)/(S - 1): the seed part plus the test-set part, minus the
seed x image interaction that s^2 already holds (a moment estimator for crossed random effects; the image
part is clipped at 0). df by Satterthwaite from S - 1 and images - 1, lowered where few seeds make it optimistic
(the seed part enters the df formula at its median-unbiased value, df kept within [S - 1, Satterthwaite]; see
``seeds_images_df``). This decomposes the variance of the
paired effect, not of raw mIoU. Chosen over a two-way bootstrap because it is deterministic, takes
milliseconds, and its 90 % intervals covered the truth 90 % +- 2 % in simulations with known seed and image
components (tests/test_analysis_stats_sim.py: 89.8 % / 90.5 % / 89.5 % for image-dominated, seed-dominated and
10 x 233 designs, where seeds-only intervals covered 79.4 % / 89.6 % / 87.8 %). With 3 seeds plain Satterthwaite
df covered 0.87; the lowered df brings every simulated cell into 0.90 +- 0.02 (tests/test_decisions_sim.py).
Without confusions the interval falls back to seeds only (with a warning).

**Speed.** Latency is timed in rounds nested in launches (fresh processes), variants in random order within a
round. Per round the log throughput ratio log(ms_baseline / ms_variant); per launch their mean; the claim's
effect is the mean over launches with a t-interval over launches (between-launch variation included).
A table without launches is one launch: below two launches there is no interval and no speed verdict, only
the reason (rounds of one process as units covered 58 % at a nominal 90 %). Only the study's declared claim setting (batch, size, dtype, mode) is
used for speed claims; other settings in latency.csv are reported, never silently used.

**Verdicts (level alpha per claim).** *Supported* iff the TOST p <= alpha (the (1 - 2 alpha) interval lies
inside the band). *Refuted* iff the two-sided (1 - alpha) interval lies wholly outside the band (alpha/2 per
edge, so a true effect inside the band is refuted with probability <= alpha): *too small*, *too large*, or
*wrong direction* (wholly on the other side of 0 from a one-sided band). Otherwise *inconclusive*, saying
first what the data do show and then what would settle it.

**Hypotheses.** The claims on one variant form its hypothesis ("+2-3 % mIoU for about -20 % speed").
Intersection-union: supported iff every part is supported, p = max of the parts' TOST p; refuted iff a
part is refuted, p = min of the parts' refute p after Holm within the hypothesis. Both are Holm-adjusted
across hypotheses (variants) with statsmodels' multipletests; a single hypothesis is not adjusted.

**Bayesian reading.** Under the reference prior the mean paired effect has a Student-t posterior
(location m, scale se, df); we report its probability below, inside and above the band (as baycomp's Student
posterior with a rope shifted to the band).

**Power.** Power, seeds needed and the smallest settleable band are those of the verdict rule above
(analysis.estimators.verdict_power: exact integration over the chi distribution of the sample sd; noncentral t for one edge),
using the observed sd and the test-set part that more seeds cannot shrink.

**Comparisons.** Every variant vs the baseline on mIoU: paired t-test, Wilcoxon signed-rank, sign-flip
permutation test, BCa bootstrap interval as a check, Cohen's d_z, Hedges' g_av (exact small-sample
correction), and the paired win rate (share of seeds where the variant beats the baseline, ties 1/2);
Holm across variants.
"""

# --------------------------------------------------------------------------- the interval engine


@dataclass(frozen=True)
class EffectEstimate:
    """Mean paired effect on the test scale, with its standard error and t degrees of freedom.

    ``sd`` and ``n`` describe the units (seeds / launches) for power; ``se_fixed`` is the part of
    ``se`` that more units would not shrink (test-set images). ``components`` says how se was built.
    """

    estimate: float
    se: float
    df: float
    n: int
    sd: float
    se_fixed: float = 0.0
    image_df: float = math.inf
    unit: str = "seeds"
    method: str = ""
    components: dict = field(default_factory=dict)
    values: tuple = ()

    @property
    def ok(self) -> bool:
        return bool(self.n >= 2 and np.isfinite(self.estimate) and np.isfinite(self.se) and self.se > 0
                    and self.df > 0)

    def _t(self, q: float) -> float:
        return float(special.stdtrit(self.df, q)) if np.isfinite(self.df) else float(special.ndtri(q))

    def _cdf(self, t: float) -> float:
        return float(special.stdtr(self.df, t)) if np.isfinite(self.df) else float(special.ndtr(t))

    def interval(self, level: float) -> list[float]:
        """Two-sided ``level`` t-interval of the estimate."""
        if not self.ok:
            return [math.nan, math.nan]
        half = self._t(0.5 + level / 2) * self.se
        return [self.estimate - half, self.estimate + half]

    def tost(self, low: float, upp: float) -> dict:
        """Two one-sided tests of low < effect < upp (statsmodels ``ttost_paired`` arithmetic)."""
        if not self.ok:
            return {"p": math.nan, "p_low": math.nan, "p_upp": math.nan, "t_low": math.nan, "t_upp": math.nan}
        t_low, t_upp = (self.estimate - low) / self.se, (self.estimate - upp) / self.se
        p_low, p_upp = self._cdf(-t_low), self._cdf(t_upp)
        return {"p": max(p_low, p_upp), "p_low": p_low, "p_upp": p_upp, "t_low": t_low, "t_upp": t_upp}

    def refute(self, low: float, upp: float) -> float:
        """p of 'the effect lies outside [low, upp]': 2 x the smaller one-sided p beyond an edge (<= 1).

        p <= alpha iff the two-sided (1 - alpha) interval lies wholly outside the band.
        """
        tost = self.tost(low, upp)
        if not np.isfinite(tost["p"]):
            return math.nan
        return float(min(1.0, 2 * min(1 - tost["p_low"], 1 - tost["p_upp"])))

    def superiority(self, alternative: str = "two-sided", null: float = 0.0) -> float:
        """t-test p of effect = ``null`` ('greater', 'less' or 'two-sided')."""
        if not self.ok:
            return math.nan
        t = (self.estimate - null) / self.se
        if alternative == "greater":
            return self._cdf(-t)
        if alternative == "less":
            return self._cdf(t)
        return float(min(1.0, 2 * self._cdf(-abs(t))))

    def posterior(self, low: float, upp: float) -> dict:
        """Student-t posterior (reference prior) of the mean effect: P(below / inside / above the band)."""
        if not self.ok:
            return {"below": math.nan, "inside": math.nan, "above": math.nan}
        below = self._cdf((low - self.estimate) / self.se)
        above = self._cdf((self.estimate - upp) / self.se)
        return {"below": below, "inside": max(0.0, 1 - below - above), "above": above}


def satterthwaite_df(parts) -> float:
    """Welch-Satterthwaite df of a sum of variance estimates ``[(variance, df), ...]``."""
    total = sum(v for v, _ in parts)
    denom = sum(v**2 / d for v, d in parts if v > 0 and np.isfinite(d))
    return float(total**2 / denom) if denom > 0 else math.inf


#: What the few-seeds df rule bought, measured by tests/test_decisions_sim.py (1,000 simulated studies a cell,
#: 3 to 10 seeds, seed- to image-dominated); the report's Methods cites these figures.
DF_RULE_COVERAGE = {"nominal": 90, "plain_at_3_seeds": 87, "lowered": (88.5, 91), "seeds": (3, 10)}


def seeds_images_df(var_seed, seeds: int, var_image, images: int):
    """t df of a seeds x images standard error, se^2 = var_seed + var_image (arrays broadcast).

    Satterthwaite's df from the estimated parts, lowered where it is optimistic: with few seeds a seed part that
    came out small by chance makes the plug-in df large and the interval short (90 % intervals covered 0.87 at 3
    seeds). The seed part enters the df formula (only) at its median-unbiased value var_seed (S - 1) /
    chi2_0.5(S - 1) (x1.44 at 3 seeds, x1.08 at 10), and df stays within [S - 1, Satterthwaite]: never
    narrower than before, and never wider than seeds alone. Simulated 90 % coverage 0.885-0.91 in every cell of
    tests/test_decisions_sim.py (3-10 seeds, seed- to image-dominated).
    """
    var_seed, var_image = np.asarray(var_seed, dtype=float), np.asarray(var_image, dtype=float)
    df_seed, df_image = np.asarray(seeds, dtype=float) - 1, np.asarray(images, dtype=float) - 1
    total = var_seed + var_image
    median_seed = var_seed * df_seed / special.chdtri(df_seed, 0.5)  # chi2 median (a ufunc: power calls it often)
    with np.errstate(divide="ignore", invalid="ignore"):
        plain = total**2 / (var_seed**2 / df_seed + var_image**2 / df_image)
        lowered = total**2 / (median_seed**2 / df_seed + var_image**2 / df_image)
    df = np.clip(lowered, df_seed, np.where(np.isfinite(plain), plain, np.inf))
    return np.where(total > 0, df, np.inf)


def paired_values(variant, baseline, *, relative: bool) -> np.ndarray:
    """Per-pair values on the test scale: log(variant / baseline) or variant - baseline (NaN when undefined)."""
    v, b = np.asarray(variant, dtype=float), np.asarray(baseline, dtype=float)
    if not relative:
        return v - b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((v > 0) & (b > 0), np.log(v / b), np.nan)


def paired_effects(seeds, claim, baseline: str) -> tuple[np.ndarray, np.ndarray]:
    """(seed ids, paired effects on the test scale) of one claim over seed rows (``paired_values``), finite only."""
    from analysis.run_reader import paired_frame

    pairs = paired_frame(seeds, claim.variant, claim.baseline or baseline, claim.metric)
    x = paired_values(pairs["variant"].to_numpy(float), pairs["baseline"].to_numpy(float), relative=claim.relative)
    ok = np.isfinite(x)
    return pairs["seed"].to_numpy()[ok], x[ok]


def unit_effect(x, *, unit: str = "seeds", method: str | None = None) -> EffectEstimate:
    """t-based estimate of the mean of independent per-unit values ``x`` (NaNs dropped)."""
    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    m = float(x.mean()) if n else math.nan
    sd = float(np.std(x, ddof=1)) if n >= 2 else math.nan
    if n >= 2 and is_degenerate(x):
        sd = 0.0
    se = sd / math.sqrt(n) if n >= 2 else math.nan
    return EffectEstimate(m, se, n - 1 if n >= 2 else math.nan, n, sd, unit=unit,
                          method=method or f"t over {n} {unit}", values=tuple(x.tolist()))


def seed_effect(variant, baseline, *, relative: bool) -> EffectEstimate:
    """Paired seeds: t on per-seed log ratios (relative) or differences (absolute)."""
    v, b = finite_pairs(variant, baseline)
    x = paired_values(v, b, relative=relative)
    scale = "log ratios" if relative else "differences"
    est = unit_effect(x, unit="seeds", method=f"paired t over seeds on {scale}")
    # Identical differences (or identical ratios) mean the runs do not really vary: no interval on either
    # scale, so an absolute and a relative band over the same runs get the same (inconclusive) answer.
    ratios = paired_values(v, b, relative=True)
    if est.n >= 2 and (is_degenerate(v - b) or (np.all(np.isfinite(ratios)) and is_degenerate(ratios))):
        est = replace(est, sd=0.0, se=0.0)
    return est


# --------------------------------------------------------------------------- seeds x test images


def miou_from_confusion(cm) -> np.ndarray | float:
    """mIoU of confusion matrices ``[..., C, C]`` (rows truth); classes absent from truth and prediction skipped."""
    cm = np.asarray(cm, dtype=float)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    union = cm.sum(-1) + cm.sum(-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
        m = np.nanmean(iou, axis=-1)
    return float(m) if np.ndim(m) == 0 else m


def leave_one_image_out(per_image) -> tuple[float, np.ndarray]:
    """(mIoU of all images, mIoU without each image ``[N]``) of one run's per-image confusions ``[N, C, C]``."""
    cm = np.asarray(per_image, dtype=float)
    total = cm.sum(0)
    return miou_from_confusion(total), miou_from_confusion(total[None] - cm)


def jackknife_variance(full: float, loo: np.ndarray) -> float:
    """Jackknife variance of a statistic from its leave-one-out values."""
    loo = np.asarray(loo, dtype=float)
    n = loo.size
    return float((n - 1) / n * np.sum((loo - loo.mean()) ** 2)) if n >= 2 else math.nan


def two_way_effect(variant_cms, baseline_cms, *, relative: bool) -> EffectEstimate:
    """Mean paired mIoU effect over seeds x test images (images crossed with seeds).

    ``variant_cms`` / ``baseline_cms``: per-seed lists (paired by position) of per-image confusion
    matrices ``[N, C, C]`` over the same N images. se^2 = s^2/S + V - (mean v_s - V)/(S - 1), the image
    part clipped at 0 (see ``METHODS``); Satterthwaite df.
    """
    per_seed, loo = [], []
    for cv, cb in zip(variant_cms, baseline_cms):
        if np.shape(cv) != np.shape(cb):
            raise ValueError(f"variant and baseline confusions cover different images: {np.shape(cv)} vs {np.shape(cb)}")
        mv, lv = leave_one_image_out(cv)
        mb, lb = leave_one_image_out(cb)
        per_seed.append(paired_values(mv, mb, relative=relative))
        loo.append(paired_values(lv, lb, relative=relative))
    return seeds_by_images(per_seed, loo)


def two_way_level(cms) -> EffectEstimate:
    """One variant's mean mIoU over seeds x test images: the estimator of :func:`two_way_effect` on the
    per-seed mIoU itself instead of a paired effect (``cms``: per-seed ``[N, C, C]`` over the same images)."""
    shapes = {np.shape(cm) for cm in cms}
    if len(shapes) > 1:
        raise ValueError(f"the seeds' confusions cover different images: {sorted(shapes)}")
    per_seed, loo = zip(*(leave_one_image_out(cm) for cm in cms)) if len(cms) else ((), ())
    return seeds_by_images(per_seed, loo)


def seeds_by_images(per_seed, loo) -> EffectEstimate:
    """The seeds x images variance-components estimate of a mean over seeds.

    ``per_seed[s]``: the statistic of seed s on all test images; ``loo[s, i]``: the same without image i.
    """
    d = np.asarray(per_seed, dtype=float)  # [S]
    loo = np.asarray(loo, dtype=float)  # [S, N]
    s_count, n_images = loo.shape if loo.ndim == 2 else (len(d), 0)
    seeds = unit_effect(d, unit="seeds")
    if s_count < 2 or n_images < 2 or not np.all(np.isfinite(loo)):
        return seeds
    v_mean = jackknife_variance(d.mean(), loo.mean(0))  # images -> seed-mean effect
    v_each = float(np.mean([jackknife_variance(d[s], loo[s]) for s in range(s_count)]))
    interaction = max(0.0, v_each - v_mean) * s_count / (s_count - 1)  # sigma^2_{seed x image} / N
    v_image = max(0.0, v_mean - interaction / s_count)
    v_seed = seeds.sd**2 / s_count if np.isfinite(seeds.sd) else math.nan
    se = math.sqrt(v_seed + v_image)
    df = float(seeds_images_df(v_seed, s_count, v_image, n_images))
    components = {"var_seed": v_seed, "var_image": v_image, "var_interaction": interaction / s_count,
                  "image_share": v_image / (v_seed + v_image) if v_seed + v_image > 0 else math.nan,
                  "n_images": int(n_images)}
    return EffectEstimate(float(d.mean()), se, df, s_count, seeds.sd, se_fixed=math.sqrt(v_image),
                          image_df=n_images - 1, unit="seeds",
                          method=f"seeds x {n_images} test images (variance components, Satterthwaite df)",
                          components=components, values=tuple(d.tolist()))


# --------------------------------------------------------------------------- latency


def launch_effect(rows, variant: str, baseline: str, *, relative: bool) -> tuple[EffectEstimate, list[str]]:
    """Speed effect of ``variant`` over ``baseline`` from latency rows (one setting), and notes.

    Rounds pair the two variants within a launch; per round log(ms_baseline / ms_variant) (the log
    throughput ratio) or the fps difference; per launch their mean; t over launches. Without a
    ``launch`` column (or with one launch) rounds are the units and a note says that between-launch
    variation is not included.
    """
    import pandas as pd

    # torch-free: the bench's own pairing and per-launch log ratios, so bench and claims agree
    from ablate.engine.latency_stats import paired_rounds, per_launch_log_ratios

    notes: list[str] = []
    frame = rows[rows["variant"].isin([variant, baseline])]
    records = frame.to_dict("records")
    pairs = paired_rounds(records, variant, baseline)
    if not pairs:
        timed = set(frame.loc[pd.to_numeric(frame["ms_per_image"], errors="coerce") > 0, "variant"])
        missing = [v for v in (variant, baseline) if v not in timed]
        why = (f"no latency rounds for '{missing[0]}'" if missing
               else f"no latency round timed both '{variant}' and '{baseline}'")
        return unit_effect([], unit="launches"), [why]
    if relative:  # per round log(ms_baseline / ms_variant); per launch their mean
        per_round = np.array([math.log(b / v) for p in pairs.values() for b, v in p])
        launches = np.array(list(per_launch_log_ratios(records, variant, baseline).values()))
    else:  # per round fps difference; per launch their mean
        per_round = np.array([1000.0 / v - 1000.0 / b for p in pairs.values() for b, v in p])
        launches = np.array([np.mean([1000.0 / v - 1000.0 / b for b, v in p]) for p in pairs.values()])
    est = unit_effect(launches, unit="launches",
                      method=f"t over {len(launches)} launches on per-launch mean "
                             + ("log throughput ratios" if relative else "fps differences"))
    if len(launches) < 2:  # rounds of one process miss the launch-to-launch spread (coverage 0.58): no interval
        notes.append(f"{variant} vs {baseline}: latency from {len(launches)} launch only: no speed verdict, because "
                     "between-launch variation cannot be estimated from one launch; time at least 2 launches "
                     "(the study's latency 'launches', or `ablate bench latency --launches 2`)")
    est = replace(est, components={"n_rounds": int(len(per_round)), "n_launches": int(len(launches))})
    return est, notes


# --------------------------------------------------------------------------- multiplicity


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values via ``statsmodels.stats.multitest.multipletests``; NaNs stay NaN, outside the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.sum() == 1:  # a family of one: nothing to adjust (and multipletests' gc.collect costs ~0.1 s)
        out[ok] = p[ok]
    elif ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


# --------------------------------------------------------------------------- comparisons over seeds


def bca_interval(x, *, level: float = 0.95, n_resamples: int = 9999, random_state=None) -> tuple[list, str | None]:
    """BCa bootstrap interval of the mean (``scipy.stats.bootstrap``), or NaNs and a note."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if n_resamples <= 0:
        return [math.nan, math.nan], "bootstrap skipped"
    if x.size < 3 or is_degenerate(x):
        return [math.nan, math.nan], f"BCa bootstrap needs >= 3 varying values, got {x.size}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = sps.bootstrap((x,), np.mean, n_resamples=int(n_resamples), confidence_level=level,
                                method="BCa", rng=np.random.default_rng(random_state))
        except Exception as exc:  # noqa: BLE001 - degenerate resamples; report, never raise
            return [math.nan, math.nan], f"BCa bootstrap failed: {exc}"
    ci = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    return (ci, None) if np.all(np.isfinite(ci)) else ([math.nan, math.nan], "BCa bootstrap degenerate")


def paired_comparison(variant, baseline, *, alpha: float = 0.05, n_resamples: int = 9999, random_state=None) -> dict:
    """Every variant-vs-baseline number of the comparisons table (two-sided, level 1 - alpha)."""
    v, b = finite_pairs(variant, baseline)
    n = int(v.size)
    diff = seed_effect(v, b, relative=False)
    ratio = seed_effect(v, b, relative=True)
    out = {"n": n, "mean_variant": float(v.mean()) if n else math.nan,
           "mean_baseline": float(b.mean()) if n else math.nan,
           "mean_diff": diff.estimate, "sd_diff": diff.sd, "se_diff": diff.se, "ci_t": diff.interval(1 - alpha),
           "rel_diff": math.expm1(ratio.estimate) if np.isfinite(ratio.estimate) else math.nan,
           "rel_ci": [math.expm1(x) for x in ratio.interval(1 - alpha)], "sd_log_ratio": ratio.sd,
           "p_ttest": diff.superiority("two-sided"), "p_wilcoxon": math.nan, "p_permutation": math.nan,
           **effect_sizes(v, b), "notes": []}
    out["ci_bca"], note = bca_interval(v - b, level=1 - alpha, n_resamples=n_resamples, random_state=random_state)
    if note and n >= 3:
        out["notes"].append(note)
    if n >= 2 and np.any(v != b):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out["p_wilcoxon"] = float(sps.wilcoxon(v, b).pvalue)
            except ValueError as exc:
                out["notes"].append(f"Wilcoxon test not computed: {exc}")
            res = sps.permutation_test((v - b,), np.mean, permutation_type="samples", n_resamples=9999,
                                       alternative="two-sided", rng=np.random.default_rng(random_state))
        out["p_permutation"] = float(min(1.0, res.pvalue))
        out["permutation_exact"] = bool(2**n <= 9999)  # scipy enumerates every sign pattern then
    if n < 2:
        out["notes"].append(f"only {n} paired seed(s): no interval or test")
    return out
