"""Training (fit), evaluation (evaluate) and one whole run (train_run).

Reproducibility: on the CPU a seed's run is bit-for-bit the same within one configuration and
machine (tests/test_packed.py). On CUDA it is not (unverified on a GPU here; PyTorch's
reproducibility notes list these kernels as nondeterministic): the backward of bilinear
upsampling accumulates with atomic adds, and cuDNN / fused-attention backward kernels may
reduce in varying order, so weights can drift at rounding level between two runs of a seed;
data order, augmentation, dropout and drop-path draws stay identical.

The step loop avoids per-step host syncs: losses stay on the device in a
preallocated tensor and are read back once every ``cfg.log_every`` steps,
which is also when a NaN/inf loss is detected (to the exact step).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ablate.engine.config import TrainConfig, resolve_amp, resolve_device
from ablate.engine.environment import huge_pages_requested, keep_freed_memory
from ablate.engine.metrics import batch_confusion, metrics_from_confusion
from ablate.engine.noise import NoiseSource, noise_generator, seed_stochastic_layers
from ablate.engine.step import (
    autocast_context,
    make_optimizer,
    make_scheduler,
    prepare_model_for_training,
    train_step,
)
from ablate.rundir import class_column


class Pruned(Exception):
    """Raised by an ``on_epoch`` callback to stop a run early (Optuna pruning)."""


@dataclass
class FitResult:
    status: str  # ok | failed | pruned
    error: str | None
    history: list[dict]  # one row per epoch: epoch, train_loss, val_miou, seconds
    train_seconds: float  # optimisation only, per-epoch validation excluded
    epochs: int  # epochs run (a partial last epoch under max_steps counts)
    steps: int = 0
    amp: str = "off"  # precision actually used
    val_seconds: float = 0.0
    best_epoch: int | None = None  # epoch with the highest val mIoU
    best_val_miou: float = float("nan")
    best_state: dict | None = field(default=None, repr=False)  # CPU copy of that epoch's weights
    packed: int = 1  # seeds trained together in one computation (ablate.engine.packed); seconds are the pack's / K


@dataclass
class EvalResult:
    metrics: dict
    confusion: np.ndarray  # int64 [C, C], rows truth
    per_image: np.ndarray  # int64 [N, C, C]
    names: list[str]


def evaluate(model, data, *, batch_size: int = 8, device: str = "cpu", amp: str = "off",
             channels_last: bool = False) -> EvalResult:
    """Batched forward + argmax under inference_mode; per-image confusions by one bincount per batch."""
    from ablate.data import BatchIterator

    device = resolve_device(device)
    amp = resolve_amp(amp, device)
    model.to(device)
    num_classes = len(data.class_names)
    batches = BatchIterator(data, batch_size, shuffle=False, augment=False, seed=0,
                            device=device, channels_last=channels_last)
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.inference_mode(), autocast_context(device, amp):
            for images, labels in batches:
                pred = model(images).argmax(1)
                chunks.append(batch_confusion(pred, labels, num_classes))
    finally:
        model.train(was_training)
    per_image = torch.cat(chunks).cpu().numpy() if chunks else np.zeros((0, num_classes, num_classes), np.int64)
    confusion = per_image.sum(axis=0)
    return EvalResult(metrics_from_confusion(confusion, data.class_names), confusion, per_image, list(data.names))


def fit(model, train, val, cfg: TrainConfig, *, on_epoch=None, progress: bool = True,
        keep_best: bool = True) -> FitResult:
    """Train ``model`` in place; validate each epoch when ``val`` is given.

    Never raises for a diverging loss (status 'failed') or a pruned run
    (``on_epoch`` raised Pruned: status 'pruned').
    """
    from tqdm.auto import tqdm

    from ablate.data import BatchIterator

    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    keep_freed_memory()  # the process reuses activation memory: ~17 % per CPU step (engine.environment)
    torch.manual_seed(cfg.seed)
    model.to(device)
    # math-preserving speed-ups (ablate.engine.step): folded all_mlp head, fp32 attention under
    # CPU autocast, channels_last; each is a TrainConfig switch recorded with the result
    prepare_model_for_training(model, channels_last=cfg.channels_last, fold_head=cfg.fold_head,
                               fp32_attention=cfg.fp32_attention)
    # dropout / drop-path draw from the run's own stream (seed packing replays it: ablate.engine.noise)
    seed_stochastic_layers(model, NoiseSource(noise_generator(cfg.seed, device)))
    model.train()
    batches = BatchIterator(train, cfg.batch_size, shuffle=True, augment=cfg.augment, seed=cfg.seed,
                            device=device, channels_last=cfg.channels_last,
                            drop_last=drops_lone_last_image(model, len(train), cfg.batch_size))
    steps_per_epoch = len(batches)
    if steps_per_epoch == 0:
        from ablate.errors import DataError

        raise DataError(f"the {getattr(train, 'split', 'training')} split has no images to train on")
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    optimizer = make_optimizer(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, kind=cfg.optimizer)
    scheduler = make_scheduler(optimizer, total_steps=total_steps, power=cfg.poly_power)
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None

    result = FitResult(status="ok", error=None, history=[], train_seconds=0.0, epochs=0, amp=amp)
    loop = StepLoop(optimizer, scheduler, scaler, total_steps, device, amp)
    step_model = compiled_for_training(model, device) if cfg.compile else model  # same parameters
    best = -math.inf
    for epoch in range(1, cfg.epochs + 1):
        if loop.count >= total_steps:
            break
        batches.set_epoch(epoch - 1)
        bar = tqdm(total=min(steps_per_epoch, total_steps - loop.count), desc=f"epoch {epoch}/{cfg.epochs}",
                   unit="it", disable=not progress, leave=True, dynamic_ncols=True)
        start = time.perf_counter()
        losses, done, error = loop.epoch(step_model, batches, bar, cfg.log_every)
        bar.close()
        if error:
            result.status = "failed"
            result.error = divergence_message(error, epoch, steps_per_epoch, cfg, amp)
            result.train_seconds += time.perf_counter() - start
            result.steps = loop.count
            return result
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        result.train_seconds += seconds
        result.epochs, result.steps = epoch, loop.count
        train_loss = losses[:done].mean().item()

        metrics = {"train_loss": train_loss}
        val_miou = float("nan")
        if val is not None:
            t0 = time.perf_counter()
            ev = evaluate(model, val, batch_size=cfg.eval_batch_size, device=device, amp=amp,
                          channels_last=cfg.channels_last)
            result.val_seconds += time.perf_counter() - t0
            metrics.update(ev.metrics)
            val_miou = ev.metrics["miou"]
            if val_miou > best:  # NaN never wins
                best = val_miou
                result.best_epoch, result.best_val_miou = epoch, val_miou
                if keep_best:
                    result.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            if progress:
                tqdm.write(f"epoch {epoch}: train loss {train_loss:.4f}, val mIoU {val_miou:.4f}")
        result.history.append({"epoch": epoch, "train_loss": train_loss, "val_miou": val_miou,
                               "seconds": seconds})
        if on_epoch is not None:
            try:
                on_epoch(epoch, metrics)
            except Pruned as exc:
                result.status = "pruned"
                result.error = str(exc) or f"pruned after epoch {epoch}"
                return result
    return result


def compiled_for_training(model, device: str):
    """``torch.compile`` of the model for the training step; on CUDA mode "reduce-overhead" (CUDA graphs:
    the fixed-shape forward and backward replay as graphs instead of hundreds of small launches).

    Unmeasured on a GPU so far, hence off by default (``TrainConfig.compile``). The last, smaller
    batch of an epoch gets a graph of its own. Evaluation uses the eager model.
    """
    mode = "reduce-overhead" if str(device).startswith("cuda") else "default"
    return torch.compile(model, mode=mode, dynamic=False)


def divergence_message(error: tuple, epoch: int, steps_per_epoch: int, cfg: TrainConfig, amp: str) -> str:
    """The one line a diverged run reports; ``error`` is (step within the epoch, loss value)."""
    return (f"loss became {error[1]} at epoch {epoch}, step {error[0]}/{steps_per_epoch}; "
            f"training stopped. Lower --lr (now {cfg.lr:g}) or use --amp off (now {amp}).")


class StepLoop:
    """The optimisation step, run over one epoch without a host sync per step."""

    def __init__(self, optimizer, scheduler, scaler, total: int, device: str, amp: str):
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.total, self.device, self.amp = total, device, amp
        self.count = 0

    def epoch(self, model, batches, bar, log_every: int):
        """-> (losses [steps] on device, steps done, None or (first bad step, its loss))."""
        losses = torch.zeros(len(batches), device=self.device)
        done = 0
        for images, labels in batches:
            # the same step function `ablate bench train` times
            losses[done] = train_step(model, self.optimizer, images, labels, device=self.device, amp=self.amp,
                                      scheduler=self.scheduler, scaler=self.scaler)
            done += 1
            self.count += 1
            last = self.count >= self.total
            if done % log_every == 0 or done == len(losses) or last:
                bad = (~torch.isfinite(losses[:done])).nonzero()  # the one host sync per window
                if bad.numel():
                    i = int(bad[0])
                    return losses, done, (i + 1, losses[i].item())
                bar.set_postfix(loss=f"{losses[:done].mean().item():.4f}", refresh=False)
            bar.update(1)
            if last:
                break
        return losses, done, None


def train_run(cfg: TrainConfig, *, data_root, out_dir, run_id: str, eval_split: str = "val", on_epoch=None,
              progress: bool = True, cache_dir=None, study: str = "", variant: str | None = None,
              phase: str = "", trial: int | None = None, save_checkpoint: bool = True) -> dict:
    """Load data, build the model, fit, evaluate on ``eval_split``, save confusions (and a checkpoint
    unless ``save_checkpoint=False``).

    Returns one results.csv row (the columns of ``ablate.rundir``) plus ``history`` (epochs.csv rows).
    The best-on-val weights are also evaluated on ``eval_split`` when it is not val,
    because the best epoch picked on the evaluation split itself is optimistically biased.
    (``ablate.engine.packed.train_runs_packed`` is the same for K seeds trained packed.)
    """
    from ablate.engine.environment import utc_now

    started_at = utc_now()
    data = load_run_data(cfg, data_root=data_root, eval_split=eval_split, cache_dir=cache_dir, progress=progress)
    model = build_run_model(cfg, data[0].class_names)
    cost = run_cost(model, cfg)
    fitted = fit(model, data[0], data[1], cfg, on_epoch=on_epoch, progress=progress)
    return finish_run(cfg, model, fitted, data, cost=cost, data_root=data_root, out_dir=out_dir, run_id=run_id,
                      eval_split=eval_split, started_at=started_at, study=study, variant=variant, phase=phase,
                      trial=trial, save_checkpoint=save_checkpoint)


def drops_lone_last_image(model, n_images: int, batch_size: int) -> bool:
    """A decoder with BatchNorm after global pooling cannot train on a batch of one: an epoch's lone last
    image is then dropped (mmseg's drop_last), the other decoders keep it."""
    from ablate.models import min_train_batch

    name = getattr(model, "decoder_name", None)
    return name is not None and n_images % int(batch_size) == 1 and min_train_batch(name) > 1


def load_run_data(cfg: TrainConfig, *, data_root, eval_split: str = "val", cache_dir=None, progress: bool = True):
    """(train, val or None, evaluation split) at the run's image size; an unknown decoder fails first."""
    from ablate.data import find_splits, load_split
    from ablate.models import check_encoder_name, decoder_encoder
    from ablate.models.input_size import check_input_size

    check_encoder_name(cfg.encoder or decoder_encoder(cfg.decoder))  # unknown names: ConfigError before any data
    check_input_size(cfg.decoder, cfg.image_size, encoder=cfg.encoder, decoder_cfg=cfg.decoder_cfg)  # too small
    load = dict(size=cfg.image_size, cache_dir=cache_dir, grouped=cfg.grouped, progress=progress, layout=cfg.layout)
    train = load_split(data_root, "train", **load)
    val = load_split(data_root, "val", **load) if "val" in find_splits(data_root, layout=cfg.layout) else None
    evaluation = val if eval_split == "val" and val is not None else load_split(data_root, eval_split, **load)
    return train, val, evaluation


def build_run_model(cfg: TrainConfig, class_names):
    from ablate.models import build_model

    pretrained = None if cfg.pretrained in (None, "", "none") else cfg.pretrained
    return build_model(cfg.decoder, num_classes=len(class_names), encoder=cfg.encoder, pretrained=pretrained,
                       seed=cfg.seed, **cfg.decoder_cfg)


def run_cost(model, cfg: TrainConfig) -> tuple[float, float]:
    """(params in millions, GFLOPs at the run's image size) of the model as defined."""
    from ablate.models import count_gflops, count_params

    return count_params(model), count_gflops(model, image_size=cfg.image_size)


def finish_run(cfg: TrainConfig, model, fitted: FitResult, data, *, cost, data_root, out_dir, run_id: str,
               eval_split: str, started_at: str, study: str = "", variant: str | None = None, phase: str = "",
               trial: int | None = None, save_checkpoint: bool = True) -> dict:
    """Evaluate a fitted model, save its confusions (and checkpoint), and return its results.csv row."""
    import json
    from pathlib import Path

    from ablate.engine.environment import device_name, utc_now, versions

    train, val, evaluation = data
    class_names = list(train.class_names)
    params_m, gflops = cost
    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    out_dir = Path(out_dir)
    nan = float("nan")
    metrics = {"miou": nan, "pixel_acc": nan, "mean_acc": nan, "fwiou": nan, "mean_dice": nan,
               "iou": dict.fromkeys(class_names, nan), "dice": dict.fromkeys(class_names, nan)}
    miou_at_best_val = nan
    eval_seconds = 0.0
    if fitted.status == "ok":
        t0 = time.perf_counter()
        ev = evaluate(model, evaluation, batch_size=cfg.eval_batch_size, device=device, amp=amp,
                      channels_last=cfg.channels_last)
        metrics = ev.metrics
        save_outputs(out_dir, run_id, ev, evaluation.split, model, cfg, fitted.epochs, checkpoint=save_checkpoint)
        if fitted.best_state is not None:
            if evaluation is val:
                miou_at_best_val = fitted.best_val_miou
            else:
                model.load_state_dict(fitted.best_state)
                miou_at_best_val = evaluate(model, evaluation, batch_size=cfg.eval_batch_size, device=device,
                                            amp=amp, channels_last=cfg.channels_last).metrics["miou"]
        eval_seconds = time.perf_counter() - t0

    setting = {
        **cfg.to_dict(), "model": getattr(model, "config", {}), "amp_used": fitted.amp, "device_used": device,
        "device_name": device_name(device), "threads": torch.get_num_threads(), "versions": versions(),
        "keeps_freed_memory": keep_freed_memory(), "huge_pages": huge_pages_requested(),
        "eval_split": eval_split, "data_root": str(data_root), "steps": fitted.steps,
        "val_seconds": round(fitted.val_seconds, 3), "eval_seconds": round(eval_seconds, 3),
        "train_images": len(train), "eval_images": len(evaluation), "packed_seeds": fitted.packed,
    }
    row = {
        "study": study, "variant": variant or cfg.decoder, "decoder": cfg.decoder,
        "encoder": getattr(model, "config", {}).get("encoder") or cfg.encoder, "phase": phase,
        "run_id": run_id, "trial": trial, "seed": cfg.seed, "split": evaluation.split,
        **{k: metrics[k] for k in ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice")},
        **{class_column(name): metrics["iou"][name] for name in class_names},
        "params_m": params_m, "gflops": gflops, "train_seconds": fitted.train_seconds,
        "epochs": fitted.epochs, "pretrained": getattr(model, "pretrained", None) or cfg.pretrained or "none",
        "image_size": f"{cfg.image_size[0]}x{cfg.image_size[1]}",
        "config": json.dumps(setting, sort_keys=True, default=str),
        "status": fitted.status, "error": fitted.error,
        "torch": torch.__version__, "transformers": setting["versions"]["transformers"], "device": device,
        "started_at": started_at, "finished_at": utc_now(),
        "best_val_epoch": fitted.best_epoch, "best_val_miou": fitted.best_val_miou,
        "miou_at_best_val": miou_at_best_val,
        "history": fitted.history,
    }
    row["epochs_history"] = row["history"]  # name used in the internal contract
    return row


def save_outputs(out_dir, run_id: str, ev: EvalResult, split: str, model, cfg: TrainConfig, epochs: int, *,
                 checkpoint: bool = True) -> None:
    """confusion/<run_id>.npz (per-image matrices for the analysis) and checkpoints/<run_id>.pt, atomically."""
    import io

    from ablate.rundir import save_checkpoint, save_confusion

    class_names = list(ev.metrics["iou"])
    save_confusion(out_dir, run_id, per_image=ev.per_image, names=ev.names, class_names=class_names, split=split)
    if not checkpoint:
        return
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"state_dict": state, "config": cfg.to_dict(), "model": getattr(model, "config", {}),
                "class_names": class_names, "run_id": run_id, "epochs": epochs}, buf)
    save_checkpoint(out_dir, run_id, buf.getvalue())
