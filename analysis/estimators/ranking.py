"""Many variants at once: which is most accurate, and which are worth their cost (numpy only).

* :func:`prob_most_accurate` -- P(each variant has the highest mean mIoU), counting both sources of
  uncertainty the claims count: the training seeds and the finite test set. It resamples seeds and
  test images independently (Owen's pigeonhole bootstrap for crossed designs, Ann. Appl. Stat. 2007),
  with each variant's mIoU recomputed from its summed per-image confusions by ``stats.miou_from_confusion``.
  Seeds are resampled jointly across variants when they share them (as a study's paired seeds do).
* :func:`pareto_front` -- the variants no other variant beats on accuracy at no more cost.
"""

from __future__ import annotations

import numpy as np

from analysis.estimators.effects import miou_from_confusion


def prob_most_accurate(cms: dict[str, dict[int, np.ndarray]], *, n_resamples: int = 2000,
                       random_state=None) -> dict[str, float]:
    """``cms``: variant -> {seed: per-image confusions ``[N, C, C]``}, the same N images everywhere; or
    variant -> {seed: mIoU} (plain numbers) when there are no confusions: then only seeds are resampled.

    Returns variant -> P(its mean-over-seeds mIoU is the highest); ties split equally. Variants that
    share every seed are resampled with the same seed draws (paired); the rest with their own.
    """
    variants = [v for v in cms if cms[v]]
    if not variants:
        return {}
    shapes = {np.shape(cm) for v in variants for cm in cms[v].values()}
    if len(shapes) != 1:
        raise ValueError(f"the runs' confusions cover different test images: {sorted(shapes)}")
    shape = shapes.pop()
    rng = np.random.default_rng(random_state)
    image_weights = None  # plain per-seed numbers: nothing to resample within a seed
    if shape:
        n_images = shape[0]
        image_weights = rng.multinomial(n_images, np.full(n_images, 1 / n_images), size=n_resamples)  # [B, N]
    shared = sorted(set.intersection(*(set(cms[v]) for v in variants)))
    seed_draws = {}  # seed list -> [B, S] counts, one draw per distinct seed list (paired when shared)
    stats = np.empty((n_resamples, len(variants)))
    for j, variant in enumerate(variants):
        seeds = shared if len(shared) >= 2 else sorted(cms[variant])
        key = tuple(seeds)
        if key not in seed_draws:
            seed_draws[key] = rng.multinomial(len(seeds), np.full(len(seeds), 1 / len(seeds)), size=n_resamples)
        per_seed = np.stack([np.full(n_resamples, float(cms[variant][s])) if image_weights is None
                             else _resampled_miou(cms[variant][s], image_weights) for s in seeds], axis=1)  # [B, S]
        stats[:, j] = (seed_draws[key] * per_seed).sum(1) / len(seeds)
    best = stats == stats.max(axis=1, keepdims=True)
    share = (best / best.sum(axis=1, keepdims=True)).mean(0)
    return {v: float(p) for v, p in zip(variants, share)}


def _resampled_miou(per_image: np.ndarray, image_weights: np.ndarray) -> np.ndarray:
    """mIoU of one run under each row of image counts ``[B, N]``: summed confusions, then mIoU."""
    n, c, _ = per_image.shape
    # float32: exact for counts below 2**24 per cell; mIoU needs no more (4x faster than float64 here)
    summed = image_weights.astype(np.float32) @ np.asarray(per_image, dtype=np.float32).reshape(n, c * c)  # [B, C*C]
    return np.asarray(miou_from_confusion(summed.reshape(-1, c, c)), dtype=float)


def pareto_front(accuracy: dict[str, float], cost: dict[str, float]) -> list[str]:
    """Variants not dominated: no other has accuracy >= and cost <= with one of them strict.

    ``cost`` is "lower is better" (GFLOPs, ms per image); pass ``-fps`` for throughput. Variants
    missing either number are left out.
    """
    points = {v: (accuracy[v], cost[v]) for v in accuracy
              if v in cost and np.isfinite(accuracy[v]) and np.isfinite(cost[v])}
    front = []
    for v, (acc, c) in points.items():
        dominated = any(a >= acc and k <= c and (a > acc or k < c) for w, (a, k) in points.items() if w != v)
        if not dominated:
            front.append(v)
    return front
