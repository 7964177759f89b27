"""``ablate bench latency STUDY``: inference latency of a study's variants, and throughput vs the baseline.

Models are built with random weights (weights do not change the arithmetic) and
measured interleaved round by round by ``ablate.engine.measure_latency``; one
process measures everything so the ratios compare like with like.
"""

from __future__ import annotations

import json

import click
import numpy as np

from ablate.study import Study, load_study


def reference_models(baseline_model, *, num_classes: int) -> dict:
    """Rows measured beside the variants (never used by claims, which compare models as defined).

    * ``hf_segformer_fp32``: Hugging Face's own SegformerForSemanticSegmentation, always fp32.
    * ``<baseline>_fast``: the baseline with ablate's math-preserving inference speed-ups
      (folded all_mlp head, fp32 attention under CPU bf16, channels_last).
    """
    import copy

    from ablate.engine.speed import (
        ChannelsLastInput,
        FP32Only,
        hf_reference_model,
        prepare_model_for_training,
    )

    fast = prepare_model_for_training(copy.deepcopy(baseline_model), channels_last=True)
    return {"hf_segformer_fp32": FP32Only(hf_reference_model(num_classes)), "_fast": ChannelsLastInput(fast)}


def measure_study_latency(study: Study, *, configs: dict | None = None, device: str = "auto",
                          dtype: str | None = None, rounds: int | None = None, threads: int | None = None,
                          image_sizes=None, batches=None, reference: bool = False) -> list[dict]:
    """latency.csv rows for every variant, at each image size and batch (study's by default).

    ``reference=True`` adds the rows of ``reference_models`` (``ablate bench latency`` does).
    """
    import torch

    from ablate.data import CAMVID_CLASSES
    from ablate.engine import measure_latency
    from ablate.engine.config import resolve_device
    from ablate.models import build_model

    lat = study.latency_settings()
    configs = configs or {v: study.train_settings(v, {}, seed=0) for v in study.variants}
    threads = threads or lat["threads"] or torch.get_num_threads()
    device = resolve_device(device)
    models = {v: build_model(cfg["decoder"], num_classes=len(CAMVID_CLASSES), pretrained=None, seed=0,
                             **cfg.get("decoder_cfg", {})) for v, cfg in configs.items()}
    if reference and study.baseline in models:
        extra = reference_models(models[study.baseline], num_classes=len(CAMVID_CLASSES))
        extra[f"{study.baseline}_fast"] = extra.pop("_fast")
        models.update(extra)
    rows = []
    for size in image_sizes or [study.image_size]:
        for batch in batches or lat["batches"]:
            rows += measure_latency(models, batch=int(batch), image_size=size, rounds=rounds or lat["rounds"],
                                    warmup=lat["warmup"], threads=threads, device=device,
                                    dtype=dtype or lat["dtype"])
    return rows


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
    """fps ratio = baseline ms / variant ms, paired by round; analysis.stats when it is there."""
    if v.size < 2:
        return {"ratio": float("nan"), "ci": [float("nan")] * 2, "ci_method": "too few rounds"}
    try:
        from analysis.stats import throughput_ratio

        r = throughput_ratio(v, b, alpha=0.05, n_resamples=4999, random_state=seed)
        return {"ratio": float(r["ratio"]), "ci": [float(c) for c in r["ci"]], "ci_method": r["ci_method"]}
    except ImportError:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, v.size, size=(4000, v.size))
        boot = b[idx].sum(axis=1) / v[idx].sum(axis=1)
        return {"ratio": float(b.sum() / v.sum()), "ci": [float(np.quantile(boot, q)) for q in (0.025, 0.975)],
                "ci_method": "percentile bootstrap over rounds"}


@click.command("latency")
@click.argument("study_file", type=click.Path(dir_okay=False))
@click.option("--preset", default=None, help="A preset of the study (its image size and rounds).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per variant ms/image and ratio vs baseline.")
@click.option("--dtype", type=click.Choice(["fp32", "bf16"]), default=None, help="Inference precision.")
@click.option("--rounds", type=click.IntRange(2), default=None, help="Timed rounds (default: the study's).")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads (default: all).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--image-size", "image_sizes", multiple=True, help="HxW; repeat for several (default: the study's).")
@click.option("--batch", "batches", multiple=True, type=click.IntRange(1), help="Batch; repeat (default: 1 and the study's).")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Also time Hugging Face's SegFormer in fp32 and the baseline with ablate's inference speed-ups.")
def latency_command(study_file, *, preset, as_json, dtype, rounds, threads, device, image_sizes, batches,
                    reference):
    """Latency of each variant of STUDY_FILE, interleaved round by round, and throughput vs the baseline."""
    from ablate.engine.config import parse_size

    study = load_study(study_file, preset=preset)
    sizes = [parse_size(s) for s in image_sizes] or None
    rows = measure_study_latency(study, device=device, dtype=dtype, rounds=rounds, threads=threads,
                                 image_sizes=sizes, batches=list(batches) or None, reference=reference)
    summary = summarize(rows, baseline=study.baseline)
    meta = {"study": study.name, "baseline": study.baseline, "device": rows[0]["device"],
            "threads": rows[0]["threads"], "dtype": rows[0]["dtype"]}
    if as_json:
        from ablate.rundir import json_safe  # JSON has no NaN: null

        click.echo(json.dumps(json_safe({**meta, "variants": summary}), indent=2))
        return
    click.echo(f"{study.name}: baseline {study.baseline}, {meta['device']}, {meta['threads']} threads, {meta['dtype']}")
    width = max(len("variant"), *(len(s["variant"]) for s in summary)) + 2
    click.echo(f"{'variant':<{width}}{'size':>9}{'batch':>6}{'ms/img':>9}  {'95% CI':<18}{'fps ratio':>9}  95% CI")
    for s in summary:
        size, ci, rci = f"{s['height']}x{s['width']}", s["ms_ci"], s["ratio_ci"]
        ms_ci = f"[{ci[0]:.2f}, {ci[1]:.2f}]"
        click.echo(f"{s['variant']:<{width}}{size:>9}{s['batch']:>6}{s['ms_median']:>9.2f}  {ms_ci:<18}"
                   f"{s['ratio_vs_baseline']:>9.3f}  [{rci[0]:.3f}, {rci[1]:.3f}]")
