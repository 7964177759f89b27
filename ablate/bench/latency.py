"""``ablate bench latency STUDY``: the reference rows beside a study's variants, and the summary table.

The variants are measured by ``ablate.engine.latency.measure_study_latency`` (the same
function the study's own latency step uses) over several launches (fresh processes): rounds
nested in launches, the variants' order random within each round. The table shows each
launch's throughput ratio vs the baseline and their geometric mean
(``ablate.engine.latency_stats``); the claims' interval is ``analysis``'s, from the launches.
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


def bench_models(configs: dict, baseline: str, reference: bool, imports=()) -> dict:
    """The variants' models plus, with ``reference``, the reference rows (module-level: a fresh launch imports it;
    ``imports``: the study files it runs first).

    ``configs`` carry the dataset's ``num_classes`` (``measure_study_latency``); the reference has the same."""
    from ablate.engine.latency import study_models

    models = study_models(None, configs, imports=imports)
    if reference and baseline in models:
        extra = reference_models(models[baseline], num_classes=configs[baseline]["num_classes"])
        extra[f"{baseline}_fast"] = extra.pop("_fast")
        models.update(extra)
    return models


def summarize(rows: list[dict], *, baseline: str, seed: int = 0) -> list[dict]:
    """Per (setting, variant): ms/image median over all rounds with a bootstrap CI, and throughput vs the
    baseline per launch with their geometric mean (``launch_ratio_table``)."""
    from ablate.engine.latency_stats import launch_ratio_table, setting_of

    out = []
    for s in launch_ratio_table(rows, baseline):
        ms = np.array([float(r["ms_per_image"]) for r in rows
                       if r["variant"] == s["variant"] and setting_of(r) == s["setting"]])
        out.append({**s, "ms_ci": _median_ci(ms, seed=seed), "ratio_vs_baseline": s["ratio_geomean"],
                    "rel_change": s["ratio_geomean"] - 1,
                    "ratio_per_launch": [s["ratio_per_launch"][k] for k in sorted(s["ratio_per_launch"])]})
    return out


def _median_ci(x: np.ndarray, *, seed: int, n: int = 4000, alpha: float = 0.05) -> list[float]:
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(x, size=(n, x.size), replace=True), axis=1)
    return [float(np.quantile(medians, alpha / 2)), float(np.quantile(medians, 1 - alpha / 2))]


def run_latency_bench(study, *, num_classes: int, device: str = "cpu", dtype: str | None = None,
                      rounds: int | None = None,
                      threads: int | None = None, image_sizes=None, batches=None, reference: bool = True,
                      modes=None, launches: int | None = None, fresh_process: bool = True,
                      allow_emulated_bf16: bool = False, progress=None) -> dict:
    """Measure the study's variants (and the reference rows) and summarise: ``{meta..., "variants": [...]}``.

    ``num_classes``: the study's dataset's (``ablate bench latency`` opens it). ``progress(message)`` hears of
    every launch and round (the CLI prints it on stderr).
    """
    import functools

    from ablate.engine.config import resolve_device
    from ablate.engine.latency import measure_study_latency

    check_bf16(resolve_device(device), dtype or study.latency_settings()["dtype"], allow=allow_emulated_bf16)

    configs = {v: study.train_settings(v, {}, seed=0) for v in study.variants}
    configs = {v: {"decoder": c["decoder"], "encoder": c.get("encoder"),
                   "decoder_cfg": dict(c.get("decoder_cfg") or {}), "num_classes": int(num_classes)}
               for v, c in configs.items()}
    build = functools.partial(bench_models, configs, study.baseline, reference, study.plugin_paths())
    rows = measure_study_latency(study, num_classes=num_classes, configs=configs, device=device, dtype=dtype,
                                 rounds=rounds, threads=threads, image_sizes=image_sizes, batches=batches, modes=modes,
                                 launches=launches,
                                 fresh_process=fresh_process, build_models=build, progress=progress)
    return {"study": study.name, "baseline": study.baseline, "num_classes": int(num_classes),
            "device": rows[0]["device"], "threads": rows[0]["threads"], "dtype": rows[0]["dtype"],
            "launches": 1 + max(r["launch"] for r in rows), "launch_kind": rows[0]["launch_kind"],
            "claim_mode": study.latency_settings()["claim_setting"]["mode"],
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


def format_summary(result: dict) -> str:
    """The text table ``ablate bench latency`` prints."""
    summary = result["variants"]
    lines = [f"{result['study']}: baseline {result['baseline']}, {result['num_classes']} classes, {result['device']}, "
             f"{result['threads']} threads, "
             f"{result['dtype']}, {result['launches']} launches ({result['launch_kind']}); "
             f"claims use mode {result['claim_mode']}"]
    width = max(len("variant"), *(len(s["variant"]) for s in summary)) + 2
    lines.append(f"{'variant':<{width}}{'mode':>9}{'size':>9}{'batch':>6}{'ms/img':>9}  {'95% CI':<18}"
                 f"{'fps ratio':>9}  per launch")
    for s in summary:
        size, ci = f"{s['height']}x{s['width']}", s["ms_ci"]
        ms_ci = f"[{ci[0]:.2f}, {ci[1]:.2f}]"
        per_launch = " ".join(f"{r:.3f}" for r in s["ratio_per_launch"])
        lines.append(f"{s['variant']:<{width}}{s['mode']:>9}{size:>9}{s['batch']:>6}{s['ms_median']:>9.2f}  "
                     f"{ms_ci:<18}{s['ratio_vs_baseline']:>9.3f}  {per_launch}")
    lines.append("fps ratio: geometric mean over launches of each launch's ratio (exp of its mean per-round log "
                 "ratio); the interval claims use is computed by `ablate analyze` from the launches")
    return "\n".join(lines)
