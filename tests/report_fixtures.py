"""A realistic verdicts.json (schema 2) for the report tests, independent of the engine's numbers.

The numbers mirror the issue's real study (4 variants × 10 seeds): skip_fused's mIoU gain
+7.3 % [−0.3, +15.5] against a claimed +2..+3 %, its speed −18 %; progressive no gain.
``report_inputs`` pairs it with a synthetic run directory (tests/analysis_runs.py) for the
tables the report reads (seed rows, epochs, study.json).
"""

from __future__ import annotations

import math
from pathlib import Path

from analysis_runs import make_run_dir

from analysis.estimators.verdict_power import power_curve, seeds_needed
from analysis.verdicts.records import ClaimVerdict, HypothesisVerdict


def _claim(variant, metric, band, estimate, ci, *, n, verdict="inconclusive", direction=None, reading=None,
           sd=0.08, se_fixed=0.0, posterior=(0.1, 0.3, 0.6), n_unit="seeds", estimate_abs=math.nan,
           ci_abs=(math.nan, math.nan), reason="") -> ClaimVerdict:
    text = f"{variant} {metric} {100 * band[0]:+g}%..{100 * band[1]:+g}%"
    midpoint = math.log1p(sum(band) / 2)
    se = math.sqrt(sd**2 / n + se_fixed**2)
    log_band = [math.log1p(b) for b in band]
    return ClaimVerdict(
        claim=text, hypothesis=f"{variant} vs all_mlp", variant=variant, baseline="all_mlp", metric=metric,
        band=list(band), relative=True, n=n, n_unit=n_unit, estimate=estimate, ci=list(ci), ci_level=0.9,
        ci_refute=[ci[0] - 0.25 * (ci[1] - ci[0]), ci[1] + 0.25 * (ci[1] - ci[0])], estimate_abs=estimate_abs,
        ci_abs=list(ci_abs), sd=sd, se=se, se_fixed=se_fixed, image_share=se_fixed**2 / se**2, test_estimate=math.log1p(estimate),
        posterior=dict(zip(("below", "inside", "above"), posterior)), power_effect=sum(band) / 2,
        seeds_needed=seeds_needed(midpoint, sd=sd, band=log_band, se_fixed=se_fixed, max_n=400),
        reading=reading, verdict=verdict, direction=direction,
        reason=reason or f"The data show an effect {reading or 'overlapping the band'}.")


def synthetic_verdicts(run_dir: str | Path = "run", *, alpha: float = 0.05) -> dict:
    claims = [
        _claim("skip_fused", "miou", (0.02, 0.03), 0.073, (-0.003, 0.155), n=10, reading="overlaps the band",
               sd=0.12, se_fixed=0.012, posterior=(0.08, 0.03, 0.89), estimate_abs=0.041, ci_abs=(-0.002, 0.086),
               reason="The data show +7.3 % [-0.3, +15.5], mostly above the band; 60 seeds would settle it."),
        _claim("skip_fused", "fps", (-0.25, -0.15), -0.18, (-0.22, -0.14), n=3, n_unit="launches", sd=0.02,
               posterior=(0.01, 0.85, 0.14), reading="overlaps the band", estimate_abs=-14.2, ci_abs=(-17.5, -11.0)),
        _claim("progressive", "miou", (0.02, 0.03), 0.001, (-0.006, 0.008), n=10, verdict="refuted",
               direction="too small", reading="smaller than claimed", sd=0.01, se_fixed=0.002,
               posterior=(0.999, 0.001, 0.0)),
        _claim("progressive", "fps", (-0.25, -0.15), -0.083, (-0.095, -0.071), n=3, n_unit="launches",
               verdict="refuted", direction="too small", reading="smaller than claimed", sd=0.01,
               posterior=(0.0, 0.0, 1.0)),
    ]
    hypotheses = [
        HypothesisVerdict(hypothesis="skip_fused vs all_mlp", variant="skip_fused", baseline="all_mlp",
                          text="miou +2%..+3% and fps -25%..-15%",
                          claims=[c.claim for c in claims[:2]], p_supported=0.41, p_supported_holm=0.41,
                          p_refuted=0.2, p_refuted_holm=0.4, n_hypotheses=2, verdict="inconclusive",
                          reason="mIoU mostly above the band, speed inside it; not settled."),
        HypothesisVerdict(hypothesis="progressive vs all_mlp", variant="progressive", baseline="all_mlp",
                          text="miou +2%..+3% and fps -25%..-15%",
                          claims=[c.claim for c in claims[2:]], p_supported=1.0, p_supported_holm=1.0,
                          p_refuted=0.001, p_refuted_holm=0.002, n_hypotheses=2, verdict="refuted",
                          refuted_by=[claims[2].claim], reason="mIoU smaller than claimed."),
    ]
    curves = []
    for c in claims:
        if c.metric == "fps":
            continue
        band = [math.log1p(b) for b in c.band]
        curve = power_curve(math.log1p(c.power_effect), sd=c.sd, band=band, ns=range(2, 41), se_fixed=c.se_fixed)
        curves.append({"label": c.claim, "claim": c.claim, **curve, "current_n": c.n, "effect": c.power_effect,
                       "sd": c.sd, "se_fixed": c.se_fixed, "band": c.band, "unit": "seeds"})
    variants = {}
    for name, miou, fps in (("all_mlp", 0.557, 100.2), ("progressive", 0.557, 92.9), ("skip_fused", 0.599, 78.6),
                            ("unet_r34", 0.509, 48.7)):
        variants[name] = {"n_seeds": 10, "n_runs": 10, "n_failed": 0, "decoder": name, "miou_mean": miou,
                          "miou_sd": 0.012, "pixel_acc_mean": miou + 0.16, "params_m": 3.7, "gflops": 2.1,
                          "fps_median": fps, "fps_q25": fps * 0.98, "fps_q75": fps * 1.02, "n_rounds": 20,
                          "n_launches": 3, "class_iou": {c: miou + 0.01 * i for i, c in enumerate("ABCDEFGHIJK")}}
    return {
        "schema_version": 2, "run_dir": str(run_dir), "study": "synthetic", "baseline": "all_mlp", "alpha": alpha,
        "seed": 0, "n_boot": 2000, "hypotheses": [h.to_dict() for h in hypotheses],
        "claims": [c.to_dict() for c in claims],
        "comparisons": [{"variant": "unet_r34", "baseline": "all_mlp", "n": 10, "mean_diff": -0.048,
                         "ci_t": [-0.054, -0.042], "rel_diff": -0.086, "rel_ci": [-0.095, -0.077],
                         "p_ttest": 1e-6, "p_holm": 3e-6, "p_permutation": 0.002, "d_z": -6.0}],
        "variants": variants,
        "test_set": {"available": True,
                     "variants": {v: {"n_runs": 10, "n_images": 12, "sd_over_seeds": 0.012, "mean_image_se": 0.004,
                                      "seed_share_of_variance": 0.9} for v in variants},
                     "paired_vs_baseline": {v: {"seeds": list(range(10)), "delta": d, "ci": [d - 0.01, d + 0.01],
                                                "var_seed": 4e-6, "var_image": 1e-6, "var_interaction": 5e-7,
                                                "image_share": 0.2, "n_images": 12}
                                            for v, d in (("progressive", 0.0), ("skip_fused", 0.041),
                                                         ("unet_r34", -0.048))}},
        "latency": {"available": True, "claim_setting": {"device": "cpu", "batch": 4, "height": 64, "width": 64,
                                                         "dtype": "fp32", "mode": "eager"},
                    "settings": [{"setting": {"device": "cpu", "batch": 4, "height": 64, "width": 64, "dtype": "fp32",
                                              "mode": "eager"}, "variants": ["all_mlp"], "n_rows": 20, "n_launches": 3},
                                 {"setting": {"device": "cpu", "batch": 1, "height": 64, "width": 64, "dtype": "fp32",
                                              "mode": "eager"}, "variants": ["all_mlp"], "n_rows": 5, "n_launches": 1}],
                    "variants": {v: {"n_rounds": 20, "n_launches": 3, "ms_median": 1000 / s["fps_median"],
                                     "ms_q25": 980 / s["fps_median"], "ms_q75": 1020 / s["fps_median"],
                                     "fps_median": s["fps_median"]} for v, s in variants.items()}},
        "power_curves": curves, "warnings": [],
        "environment": {"device": "cpu", "torch": "2.14.1", "analysis": {"python": "3.11"}},
    }


def report_inputs(root: Path, **run_kwargs):
    """(verdicts, tables, seed rows) for write_report: the synthetic verdicts over a synthetic run directory."""
    from analysis.run_reader import load_run, seed_rows

    run = make_run_dir(Path(root) / "run", **run_kwargs)
    tables = load_run(run)
    verdicts = synthetic_verdicts(run)
    return verdicts, tables, seed_rows(tables.results, [])
