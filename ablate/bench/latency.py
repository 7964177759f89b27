"""``ablate bench latency STUDY``: the reference rows beside a study's variants, and the summary table.

The variants are measured by ``ablate.engine.latency.measure_study_latency`` (the same
function the study's own latency step uses), interleaved round by round in one process,
so the ratios compare like with like.
"""

from __future__ import annotations

import numpy as np


def reference_models(baseline_model, *, num_classes: int) -> dict:
    """Rows measured beside the variants (never used by claims, which compare models as defined).

    * ``hf_segformer_fp32``: Hugging Face's own SegformerForSemanticSegmentation, always fp32.
    * ``<baseline>_fast``: the baseline with ablate's math-preserving inference speed-ups
      (folded all_mlp head, fp32 attention under CPU bf16, channels_last).
    """
    import copy

    from ablate.bench.reference import ChannelsLastInput, FP32Only, hf_reference_model
    from ablate.engine.step import prepare_model_for_training

    fast = prepare_model_for_training(copy.deepcopy(baseline_model), channels_last=True)
    return {"hf_segformer_fp32": FP32Only(hf_reference_model(num_classes)), "_fast": ChannelsLastInput(fast)}


def summarize(rows: list[dict], *, baseline: str, seed: int = 0) -> list[dict]:
    """Per (size, batch, variant): ms/image median with CI; throughput ratio vs baseline with CI."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["height"], r["width"], r["batch"]), {}).setdefault(r["variant"], {})[r["round"]] = \
            r["ms_per_image"]
    out = []
    for (h, w, batch), by_variant in groups.items():
        base = by_variant.get(baseline, {})
        for variant, ms in by_variant.items():
            rounds = sorted(set(ms) & set(base))
            v = np.array([ms[k] for k in rounds])
            b = np.array([base[k] for k in rounds])
            ratio = (_throughput_ratio(v, b, seed=seed) if variant != baseline
                     else {"ratio": 1.0, "ci": [1.0, 1.0], "ci_method": "baseline"})
            all_ms = np.array(list(ms.values()))
            out.append({"variant": variant, "height": h, "width": w, "batch": batch, "rounds": len(all_ms),
                        "ms_median": float(np.median(all_ms)), "ms_ci": _median_ci(all_ms, seed=seed),
                        "fps": 1000.0 / float(np.median(all_ms)), "ratio_vs_baseline": ratio["ratio"],
                        "ratio_ci": ratio["ci"], "rel_change": ratio["ratio"] - 1,
                        "ci_method": ratio["ci_method"]})
    return out


def _median_ci(x: np.ndarray, *, seed: int, n: int = 4000, alpha: float = 0.05) -> list[float]:
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(x, size=(n, x.size), replace=True), axis=1)
    return [float(np.quantile(medians, alpha / 2)), float(np.quantile(medians, 1 - alpha / 2))]


def _throughput_ratio(v: np.ndarray, b: np.ndarray, *, seed: int) -> dict:
    """fps ratio = baseline ms / variant ms, paired by round, with a percentile bootstrap over rounds.

    A quick summary for the benchmark's table; the claims' statistics (and their intervals) are
    ``analysis``'s, computed from latency.csv. ``ablate`` never imports ``analysis``.
    """
    if v.size < 2:
        return {"ratio": float("nan"), "ci": [float("nan")] * 2, "ci_method": "too few rounds"}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(4000, v.size))
    boot = b[idx].sum(axis=1) / v[idx].sum(axis=1)
    return {"ratio": float(b.sum() / v.sum()), "ci": [float(np.quantile(boot, q)) for q in (0.025, 0.975)],
            "ci_method": "percentile bootstrap over rounds"}


def run_latency_bench(study, *, device: str = "cpu", dtype: str | None = None, rounds: int | None = None,
                      threads: int | None = None, image_sizes=None, batches=None, reference: bool = True,
                      allow_emulated_bf16: bool = False, progress=None) -> dict:
    """Measure the study's variants (and the reference rows) and summarise: ``{meta..., "variants": [...]}``.

    ``progress(message)`` hears of every round (the CLI prints it on stderr).
    """
    from ablate.engine.config import resolve_device
    from ablate.engine.latency import measure_study_latency, study_models

    check_bf16(resolve_device(device), dtype or study.latency_settings()["dtype"], allow=allow_emulated_bf16)
    models = study_models(study)
    if reference and study.baseline in models:
        extra = reference_models(models[study.baseline], num_classes=_num_classes())
        extra[f"{study.baseline}_fast"] = extra.pop("_fast")
        models.update(extra)
    rows = measure_study_latency(study, device=device, dtype=dtype, rounds=rounds, threads=threads,
                                 image_sizes=image_sizes, batches=batches, models=models, progress=progress)
    return {"study": study.name, "baseline": study.baseline, "device": rows[0]["device"],
            "threads": rows[0]["threads"], "dtype": rows[0]["dtype"],
            "variants": summarize(rows, baseline=study.baseline)}


def check_bf16(device: str, dtype: str, *, allow: bool) -> None:
    """Refuse bf16 latency on a CPU without native bf16: emulated, it is >10x slower than fp32
    (measured on an AVX2-only EPYC: > 300 s a round vs 24 s) and measures nothing a deployment runs."""
    from ablate.engine.config import cpu_has_native_bf16
    from ablate.errors import ConfigError

    if device == "cpu" and dtype == "bf16" and not allow and not cpu_has_native_bf16():
        raise ConfigError("this CPU has no native bf16 (no avx512_bf16 or amx_bf16 in its flags), so bf16 is "
                          "emulated, >10x slower than fp32 and unlike any deployment; use --dtype fp32, or "
                          "--allow-emulated-bf16 to time it anyway")


def _num_classes() -> int:
    from ablate.data import CAMVID_CLASSES

    return len(CAMVID_CLASSES)


def format_summary(result: dict) -> str:
    """The text table ``ablate bench latency`` prints."""
    summary = result["variants"]
    lines = [f"{result['study']}: baseline {result['baseline']}, {result['device']}, {result['threads']} threads, "
             f"{result['dtype']}"]
    width = max(len("variant"), *(len(s["variant"]) for s in summary)) + 2
    lines.append(f"{'variant':<{width}}{'size':>9}{'batch':>6}{'ms/img':>9}  {'95% CI':<18}{'fps ratio':>9}  95% CI")
    for s in summary:
        size, ci, rci = f"{s['height']}x{s['width']}", s["ms_ci"], s["ratio_ci"]
        ms_ci = f"[{ci[0]:.2f}, {ci[1]:.2f}]"
        lines.append(f"{s['variant']:<{width}}{size:>9}{s['batch']:>6}{s['ms_median']:>9.2f}  {ms_ci:<18}"
                     f"{s['ratio_vs_baseline']:>9.3f}  [{rci[0]:.3f}, {rci[1]:.3f}]")
    return "\n".join(lines)
