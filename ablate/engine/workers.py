"""How many worker processes a machine holds: ``suggested_workers(device)`` for ``ablate run --workers``.

CPU: one. Training already uses the cores through torch's threads, and on the shared 2-core
machine two processes slowed each other more than they gained (see ``speed.configure_threads``).

CUDA: as many as GPU memory allows. The footprint of one worker is MEASURED, not guessed: a
fresh process (spawn) runs two training steps of the configuration, and the drop in the
device's free memory while it holds them (its CUDA context, weights, optimizer state,
activations and allocator cache) is its footprint. A safety margin is kept free.
"""

from __future__ import annotations

import math

MARGIN = 0.10  # fraction of the device's memory never planned for (fragmentation, eval batches)


def workers_that_fit(free_bytes: int, total_bytes: int, footprint_bytes: int, *, margin: float = MARGIN,
                     most: int = 32) -> int:
    """``floor((free - margin * total) / footprint)``, at least 1 and at most ``most``."""
    if footprint_bytes <= 0:
        raise ValueError(f"footprint must be positive, got {footprint_bytes}")
    usable = free_bytes - margin * total_bytes
    return max(1, min(int(most), int(math.floor(usable / footprint_bytes))))


def suggested_workers(device: str = "auto", *, cfg=None, num_classes: int | None = None,
                      footprint_bytes: int | None = None, data_bytes: int = 0, margin: float = MARGIN,
                      most: int = 32, imports=()) -> int:
    """Default worker count: 1 on CPU; on CUDA as many as the free memory holds.

    ``cfg`` (a TrainConfig or dict; default: ``TrainConfig()``) is the heaviest run the workers
    will do; its footprint is measured by ``measure_worker_footprint`` (a model with the dataset's
    ``num_classes``) unless ``footprint_bytes`` is given. ``data_bytes``: what each worker adds by keeping
    its dataset on the device (the probe trains on random tensors), e.g. ``images.nbytes + labels.nbytes``.
    """
    from ablate.engine.config import resolve_device

    device = resolve_device(device)
    if device == "cpu":
        return 1
    import torch

    free, total = torch.cuda.mem_get_info()
    footprint = (footprint_bytes or measure_worker_footprint(cfg, num_classes=num_classes, imports=imports)) \
        + int(data_bytes)
    return workers_that_fit(free, total, footprint, margin=margin, most=most)


def measure_worker_footprint(cfg=None, *, num_classes: int, steps: int = 2, imports=()) -> int:
    """Bytes of GPU memory one training process holds: measured in a fresh process on CUDA, with the
    dataset's ``num_classes`` (the classifier and the logits grow with it: 150 ADE20K classes vs 11); the
    process first runs the study files in ``imports`` (a study's own decoder)."""
    import multiprocessing

    import torch

    from ablate.engine.config import TrainConfig

    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(dict(cfg or {}))
    torch.cuda.init()
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    torch.cuda.synchronize()
    free_before, _ = torch.cuda.mem_get_info()
    child = ctx.Process(target=_hold_steps, args=(cfg.to_dict(), int(num_classes), steps, ready, release,
                                                  list(imports)), daemon=True)
    child.start()
    try:
        if not ready.wait(timeout=600):
            raise RuntimeError("the footprint probe did not finish its training steps within 10 minutes")
        free_during, _ = torch.cuda.mem_get_info()
    finally:
        release.set()
        child.join(timeout=60)
    return max(1, free_before - free_during)


def _hold_steps(cfg_dict: dict, num_classes: int, steps: int, ready, release, imports=()) -> None:
    """Child of ``measure_worker_footprint``: ``steps`` training steps on random data, then hold the memory."""
    import torch

    from ablate.study.plugins import import_study_plugins

    import_study_plugins(imports)
    from ablate.engine.config import TrainConfig, resolve_amp
    from ablate.engine.step import make_optimizer, prepare_model_for_training, train_step
    from ablate.models import build_model

    cfg = TrainConfig.from_dict({**cfg_dict, "device": "cuda", "pretrained": "none"})
    amp = resolve_amp(cfg.amp, "cuda")
    model = build_model(cfg.decoder, num_classes=num_classes, encoder=cfg.encoder, pretrained=None, seed=cfg.seed,
                        **cfg.decoder_cfg).cuda()
    prepare_model_for_training(model, channels_last=cfg.channels_last, fold_head=cfg.fold_head,
                               fp32_attention=cfg.fp32_attention)
    optimizer = make_optimizer(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, kind=cfg.optimizer)
    h, w = cfg.image_size
    images = torch.randn(cfg.batch_size, 3, h, w, device="cuda")
    labels = torch.randint(0, num_classes, (cfg.batch_size, h, w), device="cuda")
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
    for _ in range(steps):
        train_step(model, optimizer, images, labels, device="cuda", amp=amp, scaler=scaler)
    torch.cuda.synchronize()
    ready.set()
    release.wait(timeout=900)
