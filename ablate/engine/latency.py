"""Inference latency of several models, measured interleaved so drift hits all alike.

``measure_latency`` times a dict of models; ``measure_study_latency`` builds a study's
variants and times them (the study's latency step and ``ablate bench latency`` both use it).
"""

from __future__ import annotations

import time

import torch

from ablate.engine.step import autocast_context

DTYPES = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}


def measure_latency(models: dict, *, batch: int, image_size, rounds: int = 30, warmup: int = 5,
                    threads: int | None = None, device: str = "cpu", dtype: str = "fp32",
                    calls_per_round: int = 3, channels_last: bool = False, seed: int = 0,
                    progress=None) -> list[dict]:
    """Rows of latency.csv: one per (variant, round), ms per image averaged over ``calls_per_round`` calls.

    Rounds go A B C A B C ... after ``warmup`` untimed calls per model; torch's thread
    count is fixed for the whole measurement (and restored afterwards). ``progress(done, rounds)``
    is called after each round.
    """
    from ablate.engine.config import parse_size
    from ablate.errors import ConfigError

    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if dtype == "fp16" and device == "cpu":
        raise ConfigError("fp16 latency is for CUDA; on the CPU use --dtype bf16 or fp32")
    height, width = parse_size(image_size)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, height, width, generator=generator).to(device, memory_format=memory_format)
    previous_threads = torch.get_num_threads()
    threads = threads or previous_threads
    torch.set_num_threads(threads)
    modes = {}
    for model in models.values():
        modes[id(model)] = model.training
        model.eval().to(device)
        if channels_last:  # otherwise leave each model's own layout alone (a prepared model may be NHWC)
            model.to(memory_format=memory_format)

    def timed(model, calls: int) -> float:
        _sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            model(x)
        _sync(device)
        return time.perf_counter() - start

    rows = []
    try:
        with torch.inference_mode(), autocast_context(device, DTYPES[dtype]):
            for _ in range(max(warmup, 0)):
                for model in models.values():
                    timed(model, 1)
            for r in range(rounds):
                for name, model in models.items():
                    seconds = timed(model, calls_per_round)
                    rows.append({"variant": name, "round": r, "batch": batch, "height": height, "width": width,
                                 "dtype": dtype, "threads": threads, "device": device,
                                 "ms_per_image": 1000.0 * seconds / (calls_per_round * batch)})
                if progress is not None:
                    progress(r + 1, rounds)
    finally:
        torch.set_num_threads(previous_threads)
        for model in models.values():
            model.train(modes[id(model)])
    return rows


def study_models(study, configs: dict | None = None) -> dict:
    """Each variant's model (random weights: weights do not change the arithmetic)."""
    from ablate.data import CAMVID_CLASSES
    from ablate.models import build_model

    configs = configs or {v: study.train_settings(v, {}, seed=0) for v in study.variants}
    return {v: build_model(cfg["decoder"], num_classes=len(CAMVID_CLASSES), pretrained=None, seed=0,
                           **cfg.get("decoder_cfg", {})) for v, cfg in configs.items()}


def measure_study_latency(study, *, configs: dict | None = None, device: str = "auto",
                          dtype: str | None = None, rounds: int | None = None, threads: int | None = None,
                          image_sizes=None, batches=None, models: dict | None = None, progress=None) -> list[dict]:
    """latency.csv rows for every variant, at each image size and batch (study's by default).

    ``models`` (default ``study_models(study, configs)``) may hold extra rows, e.g. the
    reference models ``ablate bench latency`` adds. ``progress(message)`` hears of each round.
    """
    from ablate.engine.config import resolve_device

    lat = study.latency_settings()
    threads = threads or lat["threads"] or torch.get_num_threads()
    device = resolve_device(device)
    models = models if models is not None else study_models(study, configs)
    rows = []
    for size in image_sizes or [study.image_size]:
        for batch in batches or lat["batches"]:
            h, w = size
            said = (lambda done, total, h=h, w=w, batch=batch:
                    progress(f"latency {h}x{w} batch {batch}: round {done}/{total}")) if progress else None
            rows += measure_latency(models, batch=int(batch), image_size=size, rounds=rounds or lat["rounds"],
                                    warmup=lat["warmup"], threads=threads, device=device,
                                    dtype=dtype or lat["dtype"], progress=said)
    return rows


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
