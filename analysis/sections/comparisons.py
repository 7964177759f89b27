"""verdicts.json's ``comparisons``: every variant vs the baseline on mIoU, paired by seed (the effect, its
intervals, paired tests with Holm over variants and the effect sizes of ``analysis.estimators.effect_sizes``)."""

from __future__ import annotations

import math

import pandas as pd

from analysis.run_reader import paired_frame, unpaired_seeds


def compare_to_baseline(seeds: pd.DataFrame, order: list[str], baseline: str | None, *, alpha, seed, n_boot,
                        metric: str = "miou") -> list[dict]:
    """Paired effect on ``metric`` of every variant vs the baseline (``stats.paired_comparison``), Holm over variants."""
    from analysis.estimators.effects import holm, paired_comparison

    comparisons = []
    for variant in order:
        if variant == baseline:
            continue
        row = {"variant": variant, "baseline": baseline, "metric": metric}
        if baseline is None:
            comparisons.append({**row, "n": 0, "reason": "no baseline named"})
            continue
        pairs = paired_frame(seeds, variant, baseline, metric)
        row["seeds"] = [int(s) for s in pairs["seed"]]
        row["unpaired_seeds"] = unpaired_seeds(seeds, variant, baseline)
        if len(pairs) < 2:
            comparisons.append({**row, "n": len(pairs), "reason": f"only {len(pairs)} paired seed(s): need 2"})
            continue
        comparisons.append({**row, **paired_comparison(pairs["variant"].to_numpy(float),
                                                       pairs["baseline"].to_numpy(float), alpha=alpha,
                                                       n_resamples=n_boot, random_state=seed)})
    for key, out in (("p_ttest", "p_holm"), ("p_permutation", "p_permutation_holm")):
        adjusted = holm([c.get(key, math.nan) for c in comparisons])
        for c, p in zip(comparisons, adjusted):
            c[out] = float(p)
    return comparisons
