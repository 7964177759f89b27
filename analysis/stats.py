"""Paired statistics for ablation studies: small pure functions over numpy arrays.

Style after rliable's ``library.py``: every function takes plain arrays, an explicit
``random_state`` (``None``, an int, or a ``numpy.random.Generator``) and returns a
plain ``dict`` of floats/lists. Nothing here raises on degenerate data (too few
seeds, zero variance, NaNs): the affected numbers come back as NaN and
``notes`` says why. Nothing here imports torch.

Arrays passed as ``variant`` / ``baseline`` are *paired by position* (same seed,
same latency round); pairs where either side is NaN are dropped.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import special
from scipy import stats as sps

METHODS = """\
**Pairing.** Every variant is trained with the same list of seeds as the baseline (seed fixes data
order, augmentation and initialisation), so results are compared seed by seed: the unit of analysis is
the per-seed difference d_i = variant_i − baseline_i (absolute claims) or the per-seed log ratio
log(variant_i / baseline_i) (relative claims). Seeds present for only one side are reported and dropped.

**Effect and confidence intervals.** The mean paired difference with a paired t-interval, and a BCa
bootstrap interval over seeds (`scipy.stats.bootstrap`, method="BCa"; it needs ≥ 3 seeds and some
variance, otherwise it is reported as missing with the reason). With few seeds BCa is too narrow (in our
simulations with 10 seeds its nominal 95 % interval covered the true difference 89 % of the time; the
t-interval 95 %), so verdicts use the t-interval and BCa is shown as a check. The relative effect is the geometric
mean ratio minus one, exp(mean log(variant/baseline)) − 1, with the t-interval computed on the log
ratios and transformed back (so it can never cross −100 %, and "+x %" and "−x %" are symmetric on the
scale the test uses).

**Significance tests (two-sided, per comparison).** Paired t-test (`scipy.stats.ttest_rel`); Wilcoxon
signed-rank test (`scipy.stats.wilcoxon`, exact for small n, zero differences dropped) as a check that
does not assume normal differences; and a sign-flip permutation test of the mean difference
(`scipy.stats.permutation_test`, permutation_type="samples": exact over all 2^n sign patterns up to
n = 13 seeds, Monte Carlo beyond), which assumes only that the differences are symmetric under the null.

**Effect sizes.** Cohen's d_z = mean(d) / sd(d) (the paired standardised effect: what the paired tests
and the power analysis use); Hedges' g_av = mean(d) / ((sd_variant + sd_baseline) / 2) × J(n − 1), with
J the exact small-sample correction Γ(df/2) / (√(df/2) Γ((df − 1)/2)) (Lakens 2013; comparable to an
unpaired effect size); and the probability of improvement, the fraction of seeds on which the variant
beats the baseline, ties counted as one half.

**Test-set uncertainty.** A bootstrap over test images: resample the images with replacement (multinomial
counts), sum their per-image confusion matrices and recompute mIoU from the summed matrix (mIoU is a
ratio of sums, never a mean of per-image IoUs); BCa interval with the jackknife over images
(10,000 resamples of 233 images × 11 classes take well under a second: one matrix product of multinomial
counts with the per-image matrices). For two
variants the same resampled images are used for both (paired), giving the CI of the mIoU difference that
is due to the finite test set alone — the seed-to-seed variation is reported separately above.

**Throughput.** Latency is measured in interleaved rounds; the throughput ratio is
sum(baseline ms) / sum(variant ms) (= fps_variant / fps_baseline), with a paired BCa bootstrap over
rounds.

**Claims.** A claim states a band [lo, hi] for the effect. Relative bands are tested on the log scale,
log(1 + lo) < mean log ratio < log(1 + hi). The interval (equivalence) test is TOST: two one-sided paired
t-tests against the two edges, p = max of the two (statsmodels `ttost_paired` arithmetic). The
superiority test is the one-sided paired t-test against 0 in the direction of the band (two-sided when
the band contains 0, i.e. a "no change" claim); its two-sided p is reported too. p-values are Holm-adjusted across all claims
of the study (`statsmodels.stats.multitest.multipletests(method="holm")`), one family per kind of test.

**Verdicts.** Decided with the (1 − 2α) confidence interval (90 % for α = 0.05), the interval that
matches TOST at level α: *supported* when the whole interval lies inside the band; *refuted* when it lies
entirely outside the band — *wrong direction* when it lies entirely on the other side of 0 from the band,
otherwise *too small* (closer to 0 than the band) or *too large* (further from 0; for a band around 0,
below and above the band read as too small and too large); *inconclusive* otherwise. With several claims,
a supported/refuted verdict also needs its Holm-adjusted p-value (TOST, or the one-sided test against the
nearer edge) ≤ α, so the verdicts keep the family-wise error rate at α. For an inconclusive verdict we
report how many paired seeds would make the interval settle if the observed mean and sd stayed the same.
Speed claims use the bootstrap interval over latency rounds for the verdict and paired t-tests on the
per-round log ratios for the p-values.

**Power and seed planning.** Power of the one-sided paired t-test at the current n to detect the
smallest claimed effect (the band edge nearest to 0), in d_z units using the observed sd of the paired
differences (`statsmodels.stats.power.TTestPower`); the minimum detectable effect at 80 % power; and the
number of paired seeds needed for 80 % power. For bands around 0 (no-change claims) the power is that of
TOST when the true effect is the band's midpoint (noncentral-t approximation).
"""


# --------------------------------------------------------------------------- helpers


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _f(x) -> float:
    """A plain float (NaN for None)."""
    return float("nan") if x is None else float(x)


def _pair(variant, baseline) -> tuple[np.ndarray, np.ndarray, int]:
    v = np.asarray(variant, dtype=float).ravel()
    b = np.asarray(baseline, dtype=float).ravel()
    if v.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {v.size} vs {b.size}")
    keep = np.isfinite(v) & np.isfinite(b)
    return v[keep], b[keep], int((~keep).sum())


def t_interval(x, *, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval for the mean of ``x`` (NaN, NaN when n < 2 or sd = 0)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 2:
        return (math.nan, math.nan)
    sd = float(np.std(x, ddof=1))
    if not sd > 0:
        return (math.nan, math.nan)
    half = special.stdtrit(n - 1, 0.5 + confidence / 2) * sd / math.sqrt(n)  # = scipy.stats.t.ppf
    m = float(np.mean(x))
    return (m - half, m + half)


def hedges_correction(df: float) -> float:
    """Exact small-sample bias correction J(df) = Γ(df/2) / (√(df/2) Γ((df-1)/2))."""
    if not df > 1:
        return math.nan
    return float(math.exp(special.gammaln(df / 2) - 0.5 * math.log(df / 2) - special.gammaln((df - 1) / 2)))


def bca_bootstrap_mean(x, *, alpha: float = 0.05, n_resamples: int = 9999, random_state=None) -> tuple:
    """BCa interval for the mean of ``x`` via ``scipy.stats.bootstrap``.

    Returns ``((lo, hi), note)``; the interval is (NaN, NaN) with a one-line note when it
    cannot be computed (n < 3, zero variance, n_resamples = 0).
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if n_resamples <= 0:
        return (math.nan, math.nan), "bootstrap skipped (n_resamples=0)"
    if x.size < 3:
        return (math.nan, math.nan), f"BCa bootstrap needs at least 3 paired values, got {x.size}"
    if not np.std(x) > 0:
        return (math.nan, math.nan), "BCa bootstrap undefined: the paired values have zero variance"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = sps.bootstrap(
                (x,),
                lambda s, axis=-1: np.mean(s, axis=axis),
                n_resamples=int(n_resamples),
                vectorized=True,
                confidence_level=1 - alpha,
                method="BCa",
                rng=_rng(random_state),
            )
        except Exception as exc:  # noqa: BLE001 - degenerate resamples; report, never raise
            return (math.nan, math.nan), f"BCa bootstrap failed: {exc}"
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return (math.nan, math.nan), "BCa bootstrap degenerate (too few distinct resamples)"
    return (lo, hi), None


# --------------------------------------------------------------------------- paired effect over seeds


def paired_effect(variant, baseline, *, alpha: float = 0.05, n_resamples: int = 9999, random_state=None) -> dict:
    """Paired effect of ``variant`` over ``baseline`` (arrays paired by position, e.g. by seed).

    Returns a dict:
      ``n``, ``n_dropped`` (pairs with a NaN), ``mean_variant``, ``mean_baseline``,
      ``mean_diff`` (variant − baseline), ``sd_diff``, ``se_diff``,
      ``ci_t`` / ``ci_bca`` ((1 − alpha) intervals of the mean difference),
      ``rel_diff`` = exp(mean log(variant/baseline)) − 1 (geometric-mean ratio − 1),
      ``rel_ci`` (t-interval on the log ratios, back-transformed), ``rel_ci_bca``,
      ``sd_log_ratio``, ``p_ttest`` (paired t, two-sided), ``p_wilcoxon`` (signed-rank, two-sided),
      ``p_permutation`` (sign-flip, two-sided; ``permutation_exact`` says whether all 2^n flips were used),
      ``d_z`` = mean_diff / sd_diff, ``g_av`` (Hedges' g with the average sd, corrected),
      ``prob_improvement`` = P(variant > baseline) over pairs, ties count 1/2,
      ``notes`` (list of one-line reasons for anything NaN).
    ``n_resamples=0`` skips the BCa bootstrap (the permutation test still runs).
    """
    rng = _rng(random_state)
    v, b, dropped = _pair(variant, baseline)
    d = v - b
    n = int(d.size)
    nan2 = [math.nan, math.nan]
    out = {
        "n": n,
        "n_dropped": dropped,
        "alpha": float(alpha),
        "mean_variant": math.nan,
        "mean_baseline": math.nan,
        "mean_diff": math.nan,
        "sd_diff": math.nan,
        "se_diff": math.nan,
        "ci_t": nan2,
        "ci_bca": nan2,
        "rel_diff": math.nan,
        "rel_ci": nan2,
        "rel_ci_bca": nan2,
        "sd_log_ratio": math.nan,
        "p_ttest": math.nan,
        "p_wilcoxon": math.nan,
        "p_permutation": math.nan,
        "permutation_exact": False,
        "d_z": math.nan,
        "g_av": math.nan,
        "prob_improvement": math.nan,
        "notes": [],
    }
    notes = out["notes"]
    if dropped:
        notes.append(f"{dropped} pair(s) with a missing value dropped")
    if n == 0:
        notes.append("no complete pairs")
        return out
    out["mean_variant"] = float(np.mean(v))
    out["mean_baseline"] = float(np.mean(b))
    out["mean_diff"] = float(np.mean(d))
    out["prob_improvement"] = float((np.sum(d > 0) + 0.5 * np.sum(d == 0)) / n)
    positive = bool(np.all(v > 0) and np.all(b > 0))
    lr = np.log(v / b) if positive else None
    if positive:
        out["rel_diff"] = float(np.expm1(np.mean(lr)))
    else:
        notes.append("relative effect undefined: values must be positive")
    if n < 2:
        notes.append(f"only {n} complete pair: no interval or test")
        return out

    sd = float(np.std(d, ddof=1))
    out["sd_diff"] = sd
    out["se_diff"] = sd / math.sqrt(n)
    if positive:
        out["sd_log_ratio"] = float(np.std(lr, ddof=1))
    zero_var = not sd > 0
    if zero_var:
        notes.append("the paired differences have zero variance: intervals, t-test and d_z undefined")
    else:
        out["ci_t"] = list(t_interval(d, confidence=1 - alpha))
        out["p_ttest"] = float(sps.ttest_rel(v, b).pvalue)
        out["d_z"] = out["mean_diff"] / sd
        if positive and out["sd_log_ratio"] > 0:
            lo, hi = t_interval(lr, confidence=1 - alpha)
            out["rel_ci"] = [float(np.expm1(lo)), float(np.expm1(hi))]

    ci, note = bca_bootstrap_mean(d, alpha=alpha, n_resamples=n_resamples, random_state=rng)
    out["ci_bca"] = list(ci)
    if note and not zero_var:
        notes.append(note)
    if positive:
        ci, _ = bca_bootstrap_mean(lr, alpha=alpha, n_resamples=n_resamples, random_state=rng)
        out["rel_ci_bca"] = [float(np.expm1(ci[0])), float(np.expm1(ci[1]))]

    # Wilcoxon signed-rank (zeros dropped, exact for small n where scipy can).
    if np.any(d != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out["p_wilcoxon"] = float(sps.wilcoxon(v, b).pvalue)
            except ValueError as exc:
                notes.append(f"Wilcoxon test not computed: {exc}")
    else:
        notes.append("all paired differences are 0: Wilcoxon test undefined")

    # Sign-flip permutation test of the mean difference (exact when 2^n <= resamples).
    n_perm = max(int(n_resamples), 9999)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.permutation_test(
            (v, b),
            lambda x, y, axis=-1: np.mean(x - y, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=n_perm,
            alternative="two-sided",
            rng=rng,
        )
    out["p_permutation"] = float(min(1.0, res.pvalue))
    out["permutation_exact"] = bool(2**n <= n_perm)

    sd_av = (np.std(v, ddof=1) + np.std(b, ddof=1)) / 2
    if sd_av > 0 and n >= 3:
        out["g_av"] = float(out["mean_diff"] / sd_av * hedges_correction(n - 1))
    elif n < 3:
        notes.append("Hedges' g_av needs at least 3 pairs")
    return out


# --------------------------------------------------------------------------- TOST / superiority on paired data


def tost_1samp(x, low: float, upp: float) -> dict:
    """TOST for the mean of ``x`` (e.g. paired differences or log ratios) against ``(low, upp)``.

    Same arithmetic as ``statsmodels.stats.weightstats.ttost_paired``: p = max(p_low, p_upp),
    p_low for H0 mean <= low, p_upp for H0 mean >= upp. NaN when n < 2 or sd = 0.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    nan = {"p": math.nan, "p_low": math.nan, "p_upp": math.nan, "t_low": math.nan, "t_upp": math.nan, "df": n - 1}
    if n < 2:
        return nan
    se = float(np.std(x, ddof=1)) / math.sqrt(n)
    if not se > 0:
        return nan
    m = float(np.mean(x))
    t_low, t_upp = (m - low) / se, (m - upp) / se
    p_low = float(special.stdtr(n - 1, -t_low))  # = scipy.stats.t.sf(t_low, n - 1)
    p_upp = float(special.stdtr(n - 1, t_upp))
    return {"p": max(p_low, p_upp), "p_low": p_low, "p_upp": p_upp, "t_low": t_low, "t_upp": t_upp, "df": n - 1}


def one_sample_t(x, *, null: float = 0.0, alternative: str = "two-sided") -> float:
    """p-value of the one-sample t-test of mean(x) against ``null`` (NaN when undefined)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 2 or not np.std(x) > 0:
        return math.nan
    # the arithmetic of scipy.stats.ttest_1samp (tested against it) without its per-call overhead
    t = (float(np.mean(x)) - null) / (float(np.std(x, ddof=1)) / math.sqrt(n))
    if alternative == "greater":
        return float(special.stdtr(n - 1, -t))
    if alternative == "less":
        return float(special.stdtr(n - 1, t))
    return float(min(1.0, 2 * special.stdtr(n - 1, -abs(t))))


# --------------------------------------------------------------------------- test-set (image) bootstrap


def miou_from_confusion(cm) -> np.ndarray | float:
    """mIoU of confusion matrices ``[..., C, C]`` (rows truth, cols prediction).

    Classes absent from both truth and prediction are excluded (NaN), as in the engine.
    """
    cm = np.asarray(cm, dtype=float)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    union = cm.sum(-1) + cm.sum(-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
        m = np.nanmean(iou, axis=-1)
    return float(m) if np.ndim(m) == 0 else m


def _bca(theta: float, boot: np.ndarray, jack: np.ndarray, alpha: float) -> tuple[float, float]:
    """BCa interval from bootstrap replicates and jackknife (leave-one-out) estimates."""
    boot = boot[np.isfinite(boot)]
    jack = jack[np.isfinite(jack)]
    if boot.size < 2 or not np.std(boot) > 0:
        return (math.nan, math.nan)
    prop = np.mean(boot < theta)
    if prop <= 0 or prop >= 1:
        return (math.nan, math.nan)
    z0 = sps.norm.ppf(prop)
    dev = jack.mean() - jack
    den = 6.0 * np.sum(dev**2) ** 1.5
    a = float(np.sum(dev**3) / den) if den > 0 else 0.0
    z = sps.norm.ppf([alpha / 2, 1 - alpha / 2])
    q = sps.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    lo, hi = np.quantile(boot, q)
    return (float(lo), float(hi))


def _interval(theta, boot, jack, alpha, method) -> tuple[float, float]:
    if method.lower() == "bca":
        return _bca(theta, boot, jack, alpha)
    boot = boot[np.isfinite(boot)]
    if boot.size < 2:
        return (math.nan, math.nan)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def _resampled_sums(flat_cms: list[np.ndarray], n_resamples: int, rng, chunk: int = 2000) -> list[np.ndarray]:
    """Sum of per-image matrices over bootstrap resamples of images, one matrix product per chunk.

    ``flat_cms``: arrays ``[N, K]`` sharing the images; returns ``[B, K]`` sums, same resamples for all.
    """
    n = flat_cms[0].shape[0]
    out = [np.empty((n_resamples, f.shape[1])) for f in flat_cms]
    for start in range(0, n_resamples, chunk):
        b = min(n_resamples, start + chunk) - start
        stop = start + b
        # times each image is drawn, per resample: uniform draws + one offset bincount
        # (same distribution as rng.multinomial(n, 1/n), about 5x faster here)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(float)  # [b, N]
        for f, o in zip(flat_cms, out):
            o[start:stop] = counts @ f
    return out


def image_bootstrap_miou(
    per_image_cm, *, n_resamples: int = 10000, alpha: float = 0.05, random_state=None, method: str = "BCa"
) -> dict:
    """Test-set uncertainty of mIoU: resample images, sum confusions, recompute mIoU.

    ``per_image_cm``: ``[N, C, C]`` per-image confusion matrices. Returns
    ``{"miou", "ci", "se", "n_images", "n_resamples", "ci_method", "alpha", "notes"}``.
    """
    cm = np.asarray(per_image_cm, dtype=float)
    out = {"miou": math.nan, "ci": [math.nan, math.nan], "se": math.nan, "n_images": 0,
           "n_resamples": int(n_resamples), "ci_method": f"{method} bootstrap over test images",
           "alpha": float(alpha), "notes": []}
    if cm.ndim != 3 or cm.shape[0] == 0 or cm.shape[1] != cm.shape[2]:
        out["notes"].append(f"expected per-image confusion matrices [N, C, C], got shape {cm.shape}")
        return out
    n, c, _ = cm.shape
    out["n_images"] = int(n)
    total = cm.sum(0)
    out["miou"] = miou_from_confusion(total)
    if n < 2 or n_resamples <= 0:
        out["notes"].append("need at least 2 images and n_resamples > 0 for a bootstrap")
        return out
    (sums,) = _resampled_sums([cm.reshape(n, c * c)], int(n_resamples), _rng(random_state))
    boot = miou_from_confusion(sums.reshape(-1, c, c))
    jack = miou_from_confusion(total[None] - cm)
    out["se"] = float(np.nanstd(boot, ddof=1))
    out["ci"] = list(_interval(out["miou"], boot, jack, alpha, method))
    if not np.all(np.isfinite(out["ci"])):
        out["notes"].append("bootstrap interval degenerate (all resamples equal)")
    return out


def paired_image_bootstrap(
    per_image_cm_variant,
    per_image_cm_baseline,
    *,
    n_resamples: int = 10000,
    alpha: float = 0.05,
    random_state=None,
    method: str = "BCa",
) -> dict:
    """CI of the mIoU difference due to the test set alone: both models on the same resampled images.

    Returns ``{"miou_variant", "miou_baseline", "delta", "ci", "se", "rel_delta", "rel_ci",
    "p_bootstrap", "n_images", "n_resamples", "ci_method", "alpha", "notes"}``;
    ``p_bootstrap`` is the two-sided bootstrap p-value of delta = 0 (twice the smaller tail).
    """
    cv = np.asarray(per_image_cm_variant, dtype=float)
    cb = np.asarray(per_image_cm_baseline, dtype=float)
    nan2 = [math.nan, math.nan]
    out = {"miou_variant": math.nan, "miou_baseline": math.nan, "delta": math.nan, "ci": nan2, "se": math.nan,
           "rel_delta": math.nan, "rel_ci": nan2, "p_bootstrap": math.nan, "n_images": 0,
           "n_resamples": int(n_resamples), "ci_method": f"paired {method} bootstrap over test images",
           "alpha": float(alpha), "notes": []}
    if cv.ndim != 3 or cv.shape != cb.shape or cv.shape[0] == 0 or cv.shape[1] != cv.shape[2]:
        out["notes"].append(
            f"per-image confusion matrices must be [N, C, C] over the same images, got {cv.shape} and {cb.shape}"
        )
        return out
    n, c, _ = cv.shape
    out["n_images"] = int(n)
    tv, tb = cv.sum(0), cb.sum(0)
    mv, mb = miou_from_confusion(tv), miou_from_confusion(tb)
    out.update(miou_variant=mv, miou_baseline=mb, delta=mv - mb, rel_delta=mv / mb - 1 if mb > 0 else math.nan)
    if n < 2 or n_resamples <= 0:
        out["notes"].append("need at least 2 images and n_resamples > 0 for a bootstrap")
        return out
    sv, sb = _resampled_sums([cv.reshape(n, -1), cb.reshape(n, -1)], int(n_resamples), _rng(random_state))
    bv, bb = miou_from_confusion(sv.reshape(-1, c, c)), miou_from_confusion(sb.reshape(-1, c, c))
    jv, jb = miou_from_confusion(tv[None] - cv), miou_from_confusion(tb[None] - cb)
    delta = bv - bb
    out["se"] = float(np.nanstd(delta, ddof=1))
    out["ci"] = list(_interval(mv - mb, delta, jv - jb, alpha, method))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rel_ci"] = list(_interval(out["rel_delta"], bv / bb - 1, jv / jb - 1, alpha, method))
    fin = delta[np.isfinite(delta)]
    if fin.size:
        out["p_bootstrap"] = float(min(1.0, 2 * min(np.mean(fin <= 0), np.mean(fin >= 0))))
    if not np.all(np.isfinite(out["ci"])):
        out["notes"].append("bootstrap interval degenerate (identical predictions?)")
    return out


# --------------------------------------------------------------------------- throughput


def throughput_ratio(
    variant_ms, baseline_ms, *, alpha: float = 0.05, n_resamples: int = 9999, random_state=None
) -> dict:
    """Throughput of ``variant`` relative to ``baseline`` from per-round ms/image, paired by round.

    ``ratio`` = sum(baseline_ms) / sum(variant_ms) = fps_variant / fps_baseline (> 1: variant faster);
    ``rel_change`` = ratio − 1; ``fps_diff`` = fps_variant − fps_baseline. CIs: paired BCa bootstrap
    over rounds (``scipy.stats.bootstrap(paired=True)``). Also the per-round log ratios' mean and sd
    (``mean_log_ratio``, ``sd_log_ratio``) for tests and power.
    """
    nan2 = [math.nan, math.nan]
    out = {"n_rounds": 0, "n_dropped": 0, "ms_variant": math.nan, "ms_baseline": math.nan,
           "fps_variant": math.nan, "fps_baseline": math.nan, "ratio": math.nan, "ci": nan2,
           "rel_change": math.nan, "rel_ci": nan2, "fps_diff": math.nan, "fps_diff_ci": nan2,
           "mean_log_ratio": math.nan, "sd_log_ratio": math.nan,
           "ci_method": "paired BCa bootstrap over latency rounds", "alpha": float(alpha), "notes": []}
    v, b, dropped = _pair(variant_ms, baseline_ms)
    keep = (v > 0) & (b > 0)
    dropped += int((~keep).sum())
    v, b = v[keep], b[keep]
    n = int(v.size)
    out["n_rounds"], out["n_dropped"] = n, dropped
    if n == 0:
        out["notes"].append("no paired latency rounds with positive times")
        return out
    out["ms_variant"], out["ms_baseline"] = float(v.mean()), float(b.mean())
    out["fps_variant"], out["fps_baseline"] = 1000.0 / v.mean(), 1000.0 / b.mean()
    out["ratio"] = float(b.sum() / v.sum())
    out["rel_change"] = out["ratio"] - 1
    out["fps_diff"] = out["fps_variant"] - out["fps_baseline"]
    lr = np.log(b / v)
    out["mean_log_ratio"] = float(lr.mean())
    if n >= 2:
        out["sd_log_ratio"] = float(np.std(lr, ddof=1))
    if n < 3 or n_resamples <= 0:
        out["notes"].append(f"bootstrap over rounds needs at least 3 rounds, got {n}")
        return out
    if not (np.std(v) > 0 or np.std(b) > 0):
        out["notes"].append("latency rounds have zero variance: no bootstrap interval")
        return out
    rng = _rng(random_state)

    def ratio(x, y, axis=-1):
        return np.sum(y, axis=axis) / np.sum(x, axis=axis)

    def fps_diff(x, y, axis=-1):
        return 1000.0 / np.mean(x, axis=axis) - 1000.0 / np.mean(y, axis=axis)

    for key, stat in (("ci", ratio), ("fps_diff_ci", fps_diff)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = sps.bootstrap((v, b), stat, paired=True, vectorized=True, n_resamples=int(n_resamples),
                                    confidence_level=1 - alpha, method="BCa", rng=rng)
                out[key] = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
            except Exception as exc:  # noqa: BLE001
                out["notes"].append(f"bootstrap failed: {exc}")
    out["rel_ci"] = [out["ci"][0] - 1, out["ci"][1] - 1]
    if not np.all(np.isfinite(out["ci"])):
        out["notes"].append("bootstrap interval degenerate")
    return out


# --------------------------------------------------------------------------- multiplicity


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values; NaNs stay NaN and are not counted in the family.

    Same numbers as ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]`` (tested), without
    its per-call ``gc.collect()``.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out
