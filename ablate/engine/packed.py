"""Seed packing: K seeds of one variant trained in one process as one batched computation.

The K models' parameters and buffers are stacked (``torch.func.stack_module_state``) and one
forward is vmapped over them (``functional_call`` + ``vmap``): convolutions and matmuls run as
batched kernels over the K seeds, so a small per-seed batch still fills a GPU. Each seed keeps

* its initialisation (its models are built by the caller, as for ``fit``),
* its data order and augmentation (one ``BatchIterator`` per seed, seeded as in ``fit``),
* its dropout / drop-path draws (``ablate.engine.noise``: each seed's draws come from its own
  stream outside vmap and are replayed inside),
* its BatchNorm running statistics (stacked buffers, updated per seed inside vmap),
* its optimiser state: one Adam over the stacked tensors IS K Adams, because Adam/AdamW are
  element-wise (moments, bias correction, weight decay); the LR schedule is shared, as the
  configurations are equal but for the seed. The summed loss gives each seed's parameters the
  gradient of its own loss, since seeds share no parameter.

So a packed seed computes what ``fit`` computes for it alone, up to floating-point summation
order (batched kernels, contiguous instead of channels_last layout): tested on CPU
(tests/test_packed.py: epoch losses within 1e-5 relative, weights within 5e-5 absolute after 3 Adam steps
at lr 1e-4, except BatchNorm-cancelled biases whose zero gradient Adam turns into +-lr steps).

Not packed: fp16 (its loss scaler would be shared, so one seed's overflow would skip every
seed's step). A diverging seed is marked failed with ``fit``'s message while the others go on
(its NaNs stay in its own slice of every tensor).
"""

from __future__ import annotations

import copy
import math
import time

import torch

from ablate.engine.config import TrainConfig, resolve_amp, resolve_device
from ablate.engine.environment import keep_freed_memory
from ablate.engine.noise import NoiseSource, draw_uniform, noise_generator, seed_stochastic_layers
from ablate.engine.step import (
    autocast_context,
    make_optimizer,
    make_scheduler,
    prepare_model_for_training,
    segmentation_loss,
)
from ablate.engine.train import FitResult, Pruned, divergence_message, drops_lone_last_image, evaluate
from ablate.errors import ConfigError

__all__ = ["PackedModels", "check_packable", "fit_packed", "packed_step", "prepare_pack", "suggested_pack_size",
           "train_runs_packed"]


def check_packable(configs: list[TrainConfig]) -> None:
    """Configurations that differ only in their seed, with distinct seeds, and no fp16."""
    if not configs:
        raise ConfigError("seed packing needs at least one configuration")
    first = {k: v for k, v in configs[0].to_dict().items() if k != "seed"}
    for cfg in configs[1:]:
        other = {k: v for k, v in cfg.to_dict().items() if k != "seed"}
        if other != first:
            diff = sorted(k for k in first if first[k] != other.get(k))
            raise ConfigError(f"packed seeds must share every setting but the seed; these differ: {', '.join(diff)}")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"packed seeds must be distinct, got {seeds}")
    device = resolve_device(configs[0].device)
    if resolve_amp(configs[0].amp, device) == "fp16":
        raise ConfigError("seed packing needs --amp bf16 or off: fp16's loss scaler would be shared by the packed "
                          "seeds (one seed's overflow would skip every seed's step)")
    check_packable_model(configs[0])


def check_packable_model(cfg: TrainConfig) -> None:
    """ConfigError when the model draws random numbers outside ablate's seeded dropout / drop-path (e.g. a decoder
    calling ``F.dropout`` itself): packed seeds could not replay those draws. Checked on the meta device."""
    from ablate.engine.noise import unseeded_random_ops
    from ablate.models.checks import build_on_meta

    model = build_on_meta(cfg.decoder, encoder=cfg.encoder, **cfg.decoder_cfg)
    ops = unseeded_random_ops(model, image_size=cfg.image_size)
    if ops:
        raise ConfigError(f"decoder {cfg.decoder!r} draws random numbers outside ablate's seeded dropout modules "
                          f"({', '.join(ops)}; e.g. F.dropout called in its forward), which packed seeds cannot "
                          "replay: use --pack-seeds 1, or nn.Dropout modules in the decoder")


class PackedModels:
    """K models of one architecture as stacked parameters/buffers with one vmapped loss."""

    def __init__(self, models: list[torch.nn.Module], noises: list[NoiseSource]):
        from torch.func import stack_module_state

        self.models = models
        self.noises = noises
        params, buffers = stack_module_state(models)
        self.params = params  # leaves of shape [K, ...], requires_grad
        self.buffers = buffers  # e.g. BatchNorm running stats [K, C], updated in place per seed
        self.base = copy.deepcopy(models[0]).to("meta")  # the architecture, without weights
        self.replay = NoiseSource(None)
        seed_stochastic_layers(self.base, self.replay)
        self._noise_shapes: dict = {}

    def __len__(self) -> int:
        return len(self.models)

    def noise_shapes(self, image_shape) -> list[tuple]:
        """The shapes the stochastic layers ask for on a batch of ``image_shape``, in call order (meta run)."""
        key = tuple(image_shape)
        if key not in self._noise_shapes:
            with self.replay.recording() as shapes, torch.no_grad():
                self.base.train()(torch.empty(key, device="meta", dtype=next(self.base.parameters()).dtype))
            self._noise_shapes[key] = list(shapes)
        return self._noise_shapes[key]

    def draw_noise(self, image_shape, device) -> list[torch.Tensor]:
        """[K, *shape] per draw: seed k's draws come from seed k's own stream, in the order fit would draw them."""
        return [torch.stack([draw_uniform(shape, noise.generator, device) for noise in self.noises])
                for shape in self.noise_shapes(image_shape)]

    def losses(self, images: torch.Tensor, labels: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        """Per-seed loss [K] of images [K,B,3,H,W] and labels [K,B,H,W]."""
        from torch.func import functional_call, vmap

        def one(params, buffers, x, y, draws):
            with self.replay.replaying(draws):
                logits = functional_call(self.base, (params, buffers), (x,))
            return segmentation_loss(logits, y)

        return vmap(one, randomness="error")(self.params, self.buffers, images, labels, noise)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy each seed's slice of the stacked tensors into its own model (for evaluation, checkpoints)."""
        for k, model in enumerate(self.models):
            for name, p in model.named_parameters():
                p.copy_(self.params[name][k])
            for name, b in model.named_buffers():
                if name in self.buffers:
                    b.copy_(self.buffers[name][k])


def packed_step(pack: PackedModels, optimizer, batches, *, device: str, amp: str, scheduler=None) -> torch.Tensor:
    """One optimisation step of every packed seed (``train_step`` for K seeds); returns the detached losses [K].

    ``batches``: one (images [B,3,H,W], labels [B,H,W]) per seed, from that seed's own iterator.
    """
    images = torch.stack([b[0] for b in batches])
    labels = torch.stack([b[1] for b in batches])
    noise = pack.draw_noise(images.shape[1:], device)
    with autocast_context(device, amp):
        per_seed = pack.losses(images, labels, noise)
    optimizer.zero_grad(set_to_none=True)
    per_seed.sum().backward()  # seeds share no parameter: each gets the gradient of its own loss
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return per_seed.detach()


def prepare_pack(models: list[torch.nn.Module], configs: list[TrainConfig], device: str) -> PackedModels:
    """fit's preparation of each model (speed-ups, seeded noise), then the stacked pack."""
    noises = []
    for model, c in zip(models, configs):
        model.to(device)
        # same speed-ups as fit, but contiguous: a stacked [K, B, C, H, W] batch has no channels_last
        prepare_model_for_training(model, channels_last=False, fold_head=c.fold_head, fp32_attention=c.fp32_attention)
        noise = NoiseSource(noise_generator(c.seed, device))
        seed_stochastic_layers(model, noise)
        model.train()
        noises.append(noise)
    return PackedModels(models, noises)


def fit_packed(models: list[torch.nn.Module], train, val, configs: list[TrainConfig], *, on_epoch=None,
               progress: bool = True, keep_best: bool = True) -> list[FitResult]:
    """Train ``models[k]`` with ``configs[k]`` for every k at once; one ``FitResult`` per seed, as ``fit`` gives.

    ``on_epoch(k, epoch, metrics)`` may raise ``Pruned`` to stop seed k (the others go on). The
    trained weights end in ``models`` (as ``fit`` leaves them). ``train_seconds`` and the
    history's ``seconds`` are the pack's wall time divided by K (``packed`` = K says so).
    """
    from tqdm.auto import tqdm

    from ablate.data import BatchIterator

    check_packable(configs)
    if len(models) != len(configs):
        raise ConfigError(f"fit_packed got {len(models)} models for {len(configs)} configurations")
    cfg = configs[0]
    k_seeds = len(configs)
    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    keep_freed_memory()  # as fit does (engine.environment)
    pack = prepare_pack(models, configs, device)
    drop_last = drops_lone_last_image(models[0], len(train), configs[0].batch_size)
    iterators = [BatchIterator(train, c.batch_size, shuffle=True, augment=c.augment, seed=c.seed, device=device,
                               drop_last=drop_last) for c in configs]
    steps_per_epoch = len(iterators[0])
    if steps_per_epoch == 0:
        from ablate.errors import DataError

        raise DataError(f"the {getattr(train, 'split', 'training')} split has no images to train on")
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    optimizer = make_optimizer(pack.params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay, kind=cfg.optimizer)
    scheduler = make_scheduler(optimizer, total_steps=total_steps, power=cfg.poly_power)

    results = [FitResult(status="ok", error=None, history=[], train_seconds=0.0, epochs=0, amp=amp, packed=k_seeds)
               for _ in configs]
    active = [True] * k_seeds
    best = [-math.inf] * k_seeds
    count = 0
    for epoch in range(1, cfg.epochs + 1):
        if count >= total_steps or not any(active):
            break
        for it in iterators:
            it.set_epoch(epoch - 1)
        n_steps = min(steps_per_epoch, total_steps - count)
        losses = torch.zeros(n_steps, k_seeds, device=device)
        bar = tqdm(total=n_steps, desc=f"epoch {epoch}/{cfg.epochs} ({k_seeds} seeds packed)", unit="it",
                   disable=not progress, leave=True, dynamic_ncols=True)
        start = time.perf_counter()
        for i, batches in enumerate(zip(*iterators)):
            if i >= n_steps:
                break
            losses[i] = packed_step(pack, optimizer, batches, device=device, amp=amp, scheduler=scheduler)
            count += 1
            bar.update(1)
        bar.close()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / k_seeds
        finite = torch.isfinite(losses).cpu()  # one host sync per epoch
        pack.write_back()
        means = losses.mean(0).tolist()
        for k in range(k_seeds):
            if not active[k]:
                continue
            res = results[k]
            res.train_seconds += seconds
            if not bool(finite[:, k].all()):
                bad = int((~finite[:, k]).nonzero()[0])
                res.status = "failed"
                res.error = divergence_message((bad + 1, float(losses[bad, k])), epoch, steps_per_epoch,
                                               configs[k], amp)
                res.steps = count - n_steps + bad + 1
                active[k] = False
                continue
            res.epochs, res.steps = epoch, count
            metrics = {"train_loss": means[k]}
            val_miou = float("nan")
            if val is not None:
                t0 = time.perf_counter()
                ev = evaluate(models[k], val, batch_size=configs[k].eval_batch_size, device=device, amp=amp)
                res.val_seconds += time.perf_counter() - t0
                metrics.update(ev.metrics)
                val_miou = ev.metrics["miou"]
                if val_miou > best[k]:
                    best[k] = val_miou
                    res.best_epoch, res.best_val_miou = epoch, val_miou
                    if keep_best:
                        res.best_state = {n: v.detach().to("cpu", copy=True) for n, v in models[k].state_dict().items()}
                if progress:
                    tqdm.write(f"seed {configs[k].seed} epoch {epoch}: train loss {means[k]:.4f}, "
                               f"val mIoU {val_miou:.4f}")
            res.history.append({"epoch": epoch, "train_loss": means[k], "val_miou": val_miou, "seconds": seconds})
            if on_epoch is not None:
                try:
                    on_epoch(k, epoch, metrics)
                except Pruned as exc:
                    res.status = "pruned"
                    res.error = str(exc) or f"pruned after epoch {epoch}"
                    active[k] = False
    return results


def train_runs_packed(configs: list[TrainConfig], *, data_root, out_dir, run_ids: list[str], eval_split: str = "val",
                      on_epoch=None, progress: bool = True, cache_dir=None, study: str = "",
                      variant: str | None = None, phase: str = "", trials=None,
                      save_checkpoint: bool = True) -> list[dict]:
    """``train_run`` for K seeds of one variant trained packed: one results.csv row per seed, in order.

    Data are loaded once; each seed's model is built, evaluated, and saved exactly as ``train_run``
    does (``finish_run``); its row's config records ``packed_seeds`` = K, and its seconds are the
    pack's divided by K. ``on_epoch(k, epoch, metrics)`` as in ``fit_packed``.
    """
    from ablate.engine.environment import utc_now
    from ablate.engine.train import build_run_model, finish_run, load_run_data, run_cost

    check_packable(configs)
    if len(run_ids) != len(configs):
        raise ConfigError(f"train_runs_packed got {len(run_ids)} run ids for {len(configs)} configurations")
    started_at = utc_now()
    data = load_run_data(configs[0], data_root=data_root, eval_split=eval_split, cache_dir=cache_dir,
                         progress=progress)
    models = [build_run_model(c, data[0].class_names) for c in configs]
    costs = [run_cost(m, c) for m, c in zip(models, configs)]
    fitted = fit_packed(models, data[0], data[1], configs, on_epoch=on_epoch, progress=progress)
    trials = list(trials) if trials is not None else [None] * len(configs)
    return [finish_run(c, m, f, data, cost=cost, data_root=data_root, out_dir=out_dir, run_id=run_id,
                       eval_split=eval_split, started_at=started_at, study=study, variant=variant, phase=phase,
                       trial=trial, save_checkpoint=save_checkpoint)
            for c, m, f, cost, run_id, trial in zip(configs, models, fitted, costs, run_ids, trials)]


def suggested_pack_size(cfg: TrainConfig, *, seeds: int, num_classes: int, device: str | None = None,
                        margin: float = 0.10) -> int:
    """How many of ``seeds`` to pack into one process: 1 on CPU (packing there only saves Python overhead and the
    one-by-one path keeps channels_last); on CUDA as many as free memory holds, by a measured per-seed footprint."""
    device = resolve_device(device or cfg.device)
    if device == "cpu" or seeds <= 1:
        return 1
    from ablate.engine.workers import measure_worker_footprint, workers_that_fit

    free, total = torch.cuda.mem_get_info()
    per_seed = measure_worker_footprint(cfg, num_classes=num_classes)  # one seed's whole process: an upper bound of its share in a pack
    return min(int(seeds), workers_that_fit(free, total, per_seed, margin=margin))
