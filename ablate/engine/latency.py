"""Inference latency of several models: rounds nested in launches, random order inside each round.

Speed varies between launches (allocator state, thread pools, CUDA context, kernel choices),
not only between rounds, so one launch is one unit of the speed claims (issue 8, defect 6):

* ``measure_latency`` times the models of ONE launch: ``rounds`` rounds, each visiting every
  model once in an order drawn from ``(seed, launch, round)`` (so drift and position effects
  fall on all models alike and the order is reproducible).
* ``measure_launches`` repeats that over ``launches`` launches, each in a fresh Python process
  (spawn: new interpreter, allocator, thread pool and, on CUDA, context) that builds its models
  anew and warms them up. ``fresh_process=False`` keeps the launches in this process (fresh
  models + warm-up only), for tests and debugging; the rows say which (``launch_kind``).
* ``measure_study_latency`` does that for a study's variants (the study's latency step and
  ``ablate bench latency`` both use it).

Modes (``latency.csv`` column ``mode``): ``eager``; ``compiled`` = ``torch.compile`` (on CUDA
with ``mode="reduce-overhead"``, i.e. CUDA-graph capture of the compiled model); ``graph`` =
the eager model captured whole in one ``torch.cuda.CUDAGraph`` (CUDA only).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ablate.engine.latency_stats import MODES
from ablate.engine.step import autocast_context

DTYPES = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}


def round_order(names, *, seed: int, launch: int, round_: int) -> list:
    """The order the models are timed in one round: a permutation drawn from (seed, launch, round)."""
    names = list(names)
    rng = np.random.default_rng([int(seed), int(launch), int(round_)])
    return [names[i] for i in rng.permutation(len(names))]


def check_mode(mode: str, device: str) -> None:
    from ablate.errors import ConfigError

    if mode not in MODES:
        raise ConfigError(f"unknown latency mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "graph" and not str(device).startswith("cuda"):
        raise ConfigError("latency mode 'graph' (CUDA-graph capture) needs --device cuda; on the CPU use eager or "
                          "compiled")


def prepare_for_mode(model, mode: str, *, device: str, example: torch.Tensor):
    """A callable ``f(x)`` running ``model`` (eval, on ``device``) in ``mode``; the caller warms it up.

    ``graph`` captures one forward of ``example``'s shape; calling it copies ``x`` into the
    captured input and replays the graph (the output tensor is reused between calls).
    """
    check_mode(mode, device)
    if mode == "eager":
        return model
    if mode == "compiled":
        cuda = str(device).startswith("cuda")
        return torch.compile(model, mode="reduce-overhead" if cuda else "default", dynamic=False)
    static_in = example.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up on a side stream, as torch.cuda.graphs asks
        for _ in range(3):
            model(static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = model(static_in)

    def replay(x):
        static_in.copy_(x)
        graph.replay()
        return static_out

    return replay


def measure_latency(models: dict, *, batch: int, image_size, rounds: int = 30, warmup: int = 5,
                    threads: int | None = None, device: str = "cpu", dtype: str = "fp32",
                    calls_per_round: int = 3, channels_last: bool = False, seed: int = 0, launch: int = 0,
                    mode: str = "eager", progress=None) -> list[dict]:
    """Rows of latency.csv for one launch: one per (variant, round), ms per image over ``calls_per_round`` calls.

    Each round times every model once, in ``round_order(seed, launch, round)``; ``warmup``
    untimed calls per model come first (they also compile / capture in the non-eager modes).
    torch's thread count is fixed for the whole measurement and restored afterwards.
    ``progress(done, rounds)`` is called after each round.
    """
    from ablate.engine.config import parse_size
    from ablate.errors import ConfigError

    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if dtype == "fp16" and device == "cpu":
        raise ConfigError("fp16 latency is for CUDA; on the CPU use --dtype bf16 or fp32")
    check_mode(mode, device)
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

    def timed(fn, calls: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(calls):
            fn(x)
        synchronize(device)
        return time.perf_counter() - start

    # inference_mode tensors cannot enter compiled / captured code paths: no_grad there
    grad_off = torch.inference_mode() if mode == "eager" else torch.no_grad()
    rows = []
    try:
        with grad_off, _autocast(device, DTYPES[dtype], mode):
            runners = {name: prepare_for_mode(model, mode, device=device, example=x) for name, model in models.items()}
            for _ in range(max(warmup, 1 if mode != "eager" else 0)):
                for fn in runners.values():
                    timed(fn, 1)
            for r in range(rounds):
                for name in round_order(runners, seed=seed, launch=launch, round_=r):
                    seconds = timed(runners[name], calls_per_round)
                    rows.append({"variant": name, "launch": launch, "round": r, "mode": mode, "batch": batch,
                                 "height": height, "width": width, "dtype": dtype, "threads": threads,
                                 "device": device, "ms_per_image": 1000.0 * seconds / (calls_per_round * batch)})
                if progress is not None:
                    progress(r + 1, rounds)
    finally:
        torch.set_num_threads(previous_threads)
        for model in models.values():
            model.train(modes[id(model)])
    return rows


def measure_launches(build_models, *, launches: int, settings: list[dict], fresh_process: bool = True,
                     progress=None) -> list[dict]:
    """latency.csv rows over ``launches`` launches; each launch builds its models anew and times ``settings``.

    ``build_models`` is a picklable, module-level callable returning ``{name: model}`` (a fresh
    process must be able to import it). ``settings`` are keyword dicts for ``measure_latency``
    (batch, image_size, mode, dtype, rounds, warmup, threads, device, ...), timed in order inside
    every launch. Rows gain ``launch`` and ``launch_kind`` ("process" or "in-process").
    """
    from ablate.errors import ConfigError

    if int(launches) < 1:
        raise ConfigError(f"latency launches must be at least 1, got {launches}")
    for s in settings:  # bad input fails before any launch is spent
        check_mode(s.get("mode", "eager"), s.get("device", "cpu"))
    rows = []
    for launch in range(int(launches)):
        if fresh_process:  # the child reports its rounds on its own stderr (a callback does not cross processes)
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(1) as pool:
                got = pool.apply(_one_launch, (build_models, launch, settings, None, progress is not None))
        else:
            got = _one_launch(build_models, launch, settings, progress)
        kind = "process" if fresh_process else "in-process"
        rows += [{**r, "launch_kind": kind} for r in got]
        if progress is not None:
            progress(f"latency launch {launch + 1}/{launches} done")
    return rows


def _one_launch(build_models, launch: int, settings: list[dict], progress=None, to_stderr: bool = False) -> list[dict]:
    import sys

    if to_stderr:
        progress = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    models = build_models()
    rows = []
    for s in settings:
        h, w = s["image_size"] if isinstance(s["image_size"], (tuple, list)) else (s["image_size"],) * 2
        said = (lambda done, total, s=s, h=h, w=w: progress(
            f"latency launch {launch + 1}, {h}x{w} batch {s['batch']} {s.get('mode', 'eager')}: round {done}/{total}")
                ) if progress else None
        rows += measure_latency(models, launch=launch, progress=said, **s)
    return rows


def _autocast(device: str, amp: str, mode: str):
    if mode == "graph" and amp != "off":  # a graph must not capture autocast's per-call cast cache
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16,
                              cache_enabled=False)
    return autocast_context(device, amp)


def study_models(study=None, configs: dict | None = None, num_classes: int | None = None, imports=()) -> dict:
    """Each variant's model (random weights: weights do not change the arithmetic), with the dataset's classes.

    ``configs``: ``{variant: {"decoder": ..., "encoder": ..., "decoder_cfg": {...}, "num_classes": C}}``
    (default: the study's settings with ``num_classes``). ``imports``: study files to run first (a fresh
    launch must see the study's own decoders).
    """
    from ablate.models import build_model
    from ablate.study.plugins import import_study_plugins

    import_study_plugins(imports or (study.plugin_paths() if study is not None else ()))

    configs = configs or {v: {**study.train_settings(v, {}, seed=0), "num_classes": num_classes}
                          for v in study.variants}
    return {v: build_model(cfg["decoder"], num_classes=int(cfg["num_classes"]), encoder=cfg.get("encoder"),
                           pretrained=None, seed=0, **cfg.get("decoder_cfg", {})) for v, cfg in configs.items()}


def measure_study_latency(study, *, num_classes: int, configs: dict | None = None, device: str = "auto",
                          dtype: str | None = None,
                          rounds: int | None = None, threads: int | None = None, image_sizes=None, batches=None,
                          modes=None, launches: int | None = None, fresh_process: bool = True,
                          build_models=None, progress=None) -> list[dict]:
    """latency.csv rows for every variant over the study's launches, at each image size, batch and mode.

    ``num_classes``: the dataset's (the classifier's width and the logits grow with it).
    Defaults come from ``study.latency_settings()``: its launches, rounds, batches, dtype and
    the mode claims use (``claim_setting["mode"]``). Every launch is a fresh process
    (``fresh_process=False``: fresh models + warm-up in this process) timing each (size, batch,
    mode) in turn. ``build_models`` (picklable, ``() -> {name: model}``; default: the variants,
    ``study_models``) may add rows, e.g. the reference models of ``ablate bench latency``.
    """
    import functools

    from ablate.engine.config import resolve_device

    lat = study.latency_settings()
    configs = configs or {v: study.train_settings(v, {}, seed=0) for v in study.variants}
    configs = {v: {"decoder": c["decoder"], "encoder": c.get("encoder"),
                   "decoder_cfg": dict(c.get("decoder_cfg") or {}), "num_classes": int(num_classes)}
               for v, c in configs.items()}
    threads = threads or lat["threads"] or torch.get_num_threads()
    device = resolve_device(device)
    modes = list(modes or [lat["claim_setting"]["mode"]])
    settings = [dict(batch=int(batch), image_size=tuple(size), mode=mode, rounds=int(rounds or lat["rounds"]),
                     warmup=int(lat["warmup"]), threads=int(threads), device=device, dtype=dtype or lat["dtype"])
                for size in image_sizes or [study.image_size] for batch in batches or lat["batches"]
                for mode in modes]
    build = build_models or functools.partial(study_models, None, configs, imports=study.plugin_paths())
    return measure_launches(build, launches=int(launches or lat["launches"]), settings=settings,
                            fresh_process=fresh_process, progress=progress)


def synchronize(device: str) -> None:
    """Wait for queued device work (CUDA); a no-op on CPU. Timers call it before reading the clock."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
