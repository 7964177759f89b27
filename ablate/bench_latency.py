"""``ablate bench latency STUDY``: inference latency of a study's variants, and throughput vs the baseline.

Models are built with random weights (weights do not change the arithmetic) and
measured over several launches (fresh processes) by ``ablate.engine.latency``: rounds
nested in launches, the variants' order random within each round.
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


def build_latency_models(configs: dict, *, baseline: str | None = None, reference: bool = False) -> dict:
    """``{variant: model}`` with random weights (weights do not change the arithmetic), built the same in every launch.

    ``reference=True`` adds the rows of ``reference_models`` beside the baseline.
    """
    from ablate.data import CAMVID_CLASSES
    from ablate.models import build_model

    models = {v: build_model(cfg["decoder"], num_classes=len(CAMVID_CLASSES), pretrained=None, seed=0,
                             **cfg.get("decoder_cfg", {})) for v, cfg in configs.items()}
    if reference and baseline in models:
        extra = reference_models(models[baseline], num_classes=len(CAMVID_CLASSES))
        extra[f"{baseline}_fast"] = extra.pop("_fast")
        models.update(extra)
    return models


def measure_study_latency(study: Study, *, configs: dict | None = None, device: str = "auto",
                          dtype: str | None = None, rounds: int | None = None, threads: int | None = None,
                          image_sizes=None, batches=None, reference: bool = False, modes=None,
                          launches: int | None = None, fresh_process: bool = True, progress=None) -> list[dict]:
    """latency.csv rows for every variant over the study's launches, at each image size, batch and mode.

    Defaults come from ``study.latency_settings()``: its launches, rounds, batches, dtype and
    the claims' mode (``claim_setting["mode"]``). Every launch is a fresh process
    (``fresh_process=False``: fresh models + warm-up in this process) that times each
    (size, batch, mode) in turn, rounds nested in the launch, order random within each round.
    """
    import functools

    import torch

    from ablate.engine.config import resolve_device
    from ablate.engine.latency import measure_launches

    lat = study.latency_settings()
    configs = configs or {v: study.train_settings(v, {}, seed=0) for v in study.variants}
    configs = {v: {"decoder": c["decoder"], "decoder_cfg": dict(c.get("decoder_cfg", {}))} for v, c in configs.items()}
    threads = threads or lat["threads"] or torch.get_num_threads()
    device = resolve_device(device)
    modes = list(modes or [lat["claim_setting"]["mode"]])
    settings = [dict(batch=int(batch), image_size=tuple(size), mode=mode, rounds=int(rounds or lat["rounds"]),
                     warmup=int(lat["warmup"]), threads=int(threads), device=device, dtype=dtype or lat["dtype"])
                for size in image_sizes or [study.image_size] for batch in batches or lat["batches"] for mode in modes]
    build = functools.partial(build_latency_models, configs, baseline=study.baseline, reference=reference)
    return measure_launches(build, launches=int(launches or lat["launches"]), settings=settings,
                            fresh_process=fresh_process, progress=progress)


def summarize(rows: list[dict], *, baseline: str, seed: int = 0) -> list[dict]:
    """Per (setting, variant): ms/image median over all rounds with a bootstrap CI, and throughput vs baseline
    per launch with their geometric mean (``launch_ratio_table``; the interval for claims is analysis's)."""
    from ablate.engine.latency_stats import launch_ratio_table, setting_of

    out = []
    for s in launch_ratio_table(rows, baseline):
        key = (s["mode"], s["dtype"], s["batch"], s["height"], s["width"], s["device"])
        ms = np.array([float(r["ms_per_image"]) for r in rows if r["variant"] == s["variant"] and setting_of(r) == key])
        out.append({**s, "ms_ci": _median_ci(ms, seed=seed), "ratio_vs_baseline": s["ratio_geomean"],
                    "rel_change": s["ratio_geomean"] - 1,
                    "ratio_per_launch": [s["ratio_per_launch"][k] for k in sorted(s["ratio_per_launch"])]})
    return out


def _median_ci(x: np.ndarray, *, seed: int, n: int = 4000, alpha: float = 0.05) -> list[float]:
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(x, size=(n, x.size), replace=True), axis=1)
    return [float(np.quantile(medians, alpha / 2)), float(np.quantile(medians, 1 - alpha / 2))]


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
@click.option("--mode", "modes", multiple=True, type=click.Choice(["eager", "compiled", "graph"]),
              help="eager, compiled (torch.compile; CUDA: reduce-overhead = CUDA graphs) or graph (CUDA-graph "
                   "capture, CUDA only); repeat to measure several (default: the mode claims use).")
@click.option("--launches", type=click.IntRange(1), default=None,
              help="Launches, each a fresh process (default: the study's).")
@click.option("--in-process", is_flag=True,
              help="Launches in this process (fresh models + warm-up) instead of fresh processes.")
def latency_command(study_file, *, preset, as_json, dtype, rounds, threads, device, image_sizes, batches,
                    reference, modes, launches, in_process):
    """Latency of each variant of STUDY_FILE, interleaved round by round, and throughput vs the baseline."""
    from ablate.engine.config import parse_size

    study = load_study(study_file, preset=preset)
    sizes = [parse_size(s) for s in image_sizes] or None
    echo = lambda msg: click.echo(msg, err=True)  # noqa: E731  (progress on stderr; stdout stays the result)
    rows = measure_study_latency(study, device=device, dtype=dtype, rounds=rounds, threads=threads,
                                 image_sizes=sizes, batches=list(batches) or None, reference=reference,
                                 modes=list(modes) or None, launches=launches, fresh_process=not in_process,
                                 progress=echo)
    summary = summarize(rows, baseline=study.baseline)
    claim_mode = study.latency_settings()["claim_setting"]["mode"]
    meta = {"study": study.name, "baseline": study.baseline, "device": rows[0]["device"],
            "threads": rows[0]["threads"], "dtype": rows[0]["dtype"], "launches": 1 + max(r["launch"] for r in rows),
            "launch_kind": rows[0]["launch_kind"], "claim_mode": claim_mode}
    if as_json:
        from ablate.rundir import json_safe  # JSON has no NaN: null

        click.echo(json.dumps(json_safe({**meta, "variants": summary}), indent=2))
        return
    click.echo(f"{study.name}: baseline {study.baseline}, {meta['device']}, {meta['threads']} threads, "
               f"{meta['dtype']}, {meta['launches']} launches ({meta['launch_kind']}); claims use mode {claim_mode}")
    width = max(len("variant"), *(len(s["variant"]) for s in summary)) + 2
    click.echo(f"{'variant':<{width}}{'mode':>9}{'size':>9}{'batch':>6}{'ms/img':>9}  {'95% CI':<18}"
               f"{'fps ratio':>9}  per launch")
    for s in summary:
        size, ci = f"{s['height']}x{s['width']}", s["ms_ci"]
        ms_ci = f"[{ci[0]:.2f}, {ci[1]:.2f}]"
        per_launch = " ".join(f"{r:.3f}" for r in s["ratio_per_launch"])
        click.echo(f"{s['variant']:<{width}}{s['mode']:>9}{size:>9}{s['batch']:>6}{s['ms_median']:>9.2f}  "
                   f"{ms_ci:<18}{s['ratio_vs_baseline']:>9.3f}  {per_launch}")
    click.echo("fps ratio: geometric mean over launches of each launch's ratio (exp of the mean per-round log "
               "ratio); the interval used by claims is computed by `ablate analyze` from the launches")
