"""``ablate bench train``: training images/s of ablate's own step vs a plain Hugging Face loop.

Both sides run in one process, interleaved (reference slice, ours, reference, ours, ...), so
both see the same machine load; the ratio of each round pairs two neighbouring slices.

Reference (``ablate.bench.reference``): HF ``SegformerForSemanticSegmentation`` (MiT-B0, random init, fp32), a
``torch.utils.data.DataLoader`` (2 workers, shuffle) over a Dataset that opens, converts and
resizes the PNGs with PIL at every step (image bilinear, label nearest, void 11 -> 255,
ImageNet normalisation), plain ``torch.optim.Adam`` (lr 1e-4), loss from
``model(pixel_values, labels=...)``.

Ours: ``fit``'s step (``ablate.engine.step.train_step``) on ``build_model(decoder)`` with
decode-once uint8 data (``load_split``), ``BatchIterator`` augmentation, autocast per ``--amp``
(auto = bf16 where the CPU has native bf16), channels_last, fused Adam, poly LR, and the folded
all_mlp head (``prepare_model_for_training``).
"""

from __future__ import annotations

import os
import statistics
import time

from ablate.bench import TRAIN_DECODERS
from ablate.bench.reference import ReferenceLoop

# ----------------------------------------------------------------------------- ours


class OursLoop:
    """``fit``'s training step on ablate's model and data (see module docstring)."""

    def __init__(self, train, *, decoder: str, batch_size: int, device: str, amp: str, channels_last: bool,
                 fold_head: bool, seed: int = 0):
        import torch

        from ablate.data import BatchIterator
        from ablate.engine.config import TrainConfig
        from ablate.engine.step import make_optimizer, make_scheduler, prepare_model_for_training
        from ablate.models import build_model, count_gflops

        self.cfg = TrainConfig(decoder=decoder, batch_size=batch_size, amp=amp, channels_last=channels_last,
                               seed=seed, image_size=tuple(train.images.shape[-2:]))
        model = build_model(decoder, num_classes=len(train.class_names), pretrained=None, seed=seed)
        # nominal forward cost of the model as defined (before the head is folded)
        self.gflops = count_gflops(model, tuple(train.images.shape[-2:]))
        model.to(device)
        self.folded = False
        prepare_model_for_training(model, channels_last=channels_last, fold_head=fold_head)
        self.folded = fold_head and "forward" in vars(model.decoder)
        model.train()
        self.model = model
        self.batches = BatchIterator(train, batch_size, shuffle=True, augment=True, seed=seed, device=device,
                                     channels_last=channels_last)
        self.optimizer = make_optimizer(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay,
                                        kind=self.cfg.optimizer)
        self.scheduler = make_scheduler(self.optimizer, total_steps=len(self.batches) * self.cfg.epochs,
                                        power=self.cfg.poly_power)
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.device, self.amp = device, amp
        self.epoch = 0
        self._it = None
        self.losses = torch.zeros(len(self.batches), device=device)  # fit keeps losses on the device
        self._i = 0
        self.last_loss = float("nan")

    def next_batch(self):
        if self._it is None:
            self.batches.set_epoch(self.epoch)
            self._it = iter(self.batches)
            self._i = 0
        try:
            return next(self._it)
        except StopIteration:
            self.epoch += 1
            self._it = None
            return self.next_batch()

    def step(self) -> int:
        from ablate.engine.step import train_step

        images, labels = self.next_batch()
        loss = train_step(self.model, self.optimizer, images, labels, device=self.device, amp=self.amp,
                          scheduler=self.scheduler, scaler=self.scaler)
        self.losses[self._i] = loss
        self._i += 1
        return images.shape[0]

    def finish(self) -> None:
        self.last_loss = float(self.losses[self._i - 1]) if self._i else float("nan")


# ----------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _timed_slice(loop, steps: int, device: str) -> tuple[float, float, float | None]:
    """images/s (wall), images per CPU-second (this process + DataLoader workers) and peak RSS (MiB)."""
    workers = getattr(loop, "worker_cpu_seconds", lambda: 0.0)
    reset_peak_rss()
    _sync(device)
    cpu0 = time.process_time() + workers()
    start = time.perf_counter()
    images = 0
    for _ in range(steps):
        images += loop.step()
    _sync(device)
    seconds = time.perf_counter() - start
    cpu = time.process_time() + workers() - cpu0
    loop.finish()
    return images / seconds, images / max(cpu, 1e-9), peak_rss_mb()


def _summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None


def run_bench(data_root, *, decoder: str = "all_mlp", rounds: int = 5, steps_per_round: int = 20,
              batch_size: int = 4, image_size=(256, 256), threads: int | str | None = None, amp: str = "auto",
              device: str = "auto", channels_last: bool = True, fold_head: bool = True, warmup: int = 2,
              workers: int = 2, cache_dir=None, reference: bool | None = None, echo=None) -> dict:
    """Run the interleaved benchmark; returns the JSON-able result (see ``bench_train_command``)."""
    from ablate.data import load_split
    from ablate.engine.config import parse_size, resolve_amp, resolve_device
    from ablate.engine.environment import configure_threads, device_name, versions
    from ablate.errors import ConfigError

    if decoder not in TRAIN_DECODERS:
        raise ConfigError(f"unknown decoder {decoder!r} for bench train; use one of {', '.join(TRAIN_DECODERS)}")
    for name, value in (("rounds", rounds), ("steps-per-round", steps_per_round), ("batch-size", batch_size)):
        if int(value) < 1:
            raise ConfigError(f"--{name} must be at least 1, got {value}")
    size = parse_size(image_size)
    if threads is not None and threads != "auto":
        try:
            threads = int(threads)
        except ValueError:
            raise ConfigError(f"--threads must be a number or 'auto', got {threads!r}") from None
    threads = configure_threads(threads)
    device = resolve_device(device)
    amp = resolve_amp(amp, device)
    with_reference = decoder == "all_mlp" if reference is None else bool(reference)
    say = echo or (lambda *_: None)

    train = load_split(data_root, "train", size=size, cache_dir=cache_dir, progress=False)
    ours = OursLoop(train, decoder=decoder, batch_size=batch_size, device=device, amp=amp,
                    channels_last=channels_last, fold_head=fold_head)
    loops = {"ours": ours}
    gflops = {"ours": ours.gflops}
    if with_reference:
        from ablate.models import count_gflops

        ref = ReferenceLoop(data_root, size=size, batch_size=batch_size, num_classes=len(train.class_names),
                            device=device, workers=workers)
        gflops["ref"] = count_gflops(ref.wrapper, size)
        loops = {"ref": ref, "ours": ours}
    for loop in loops.values():  # warm-up: workers start, allocator and oneDNN caches fill
        for _ in range(max(0, warmup)):
            loop.step()
        loop.finish()

    per_round = {side: [] for side in loops}
    per_cpu = {side: [] for side in loops}
    peak = {side: [] for side in loops}
    for r in range(rounds):
        for side, loop in loops.items():
            ips, ipc, mem = _timed_slice(loop, steps_per_round, device)
            per_round[side].append(ips)
            per_cpu[side].append(ipc)
            if mem is not None:
                peak[side].append(mem)
        line = "  ".join(f"{side} {per_round[side][-1]:.2f} img/s ({per_cpu[side][-1]:.2f} per CPU-s)"
                         for side in loops)
        if with_reference:
            line += f"  ratio {per_round['ours'][-1] / per_round['ref'][-1]:.2f}"
        say(f"round {r + 1}/{rounds}: {line}")

    ratios = [o / r for o, r in zip(per_round["ours"], per_round["ref"])] if with_reference else []
    cpu_ratios = [o / r for o, r in zip(per_cpu["ours"], per_cpu["ref"])] if with_reference else []
    med = {side: statistics.median(v) for side, v in per_round.items()}
    result = {
        "decoder": decoder,
        "ratio_median": statistics.median(ratios) if ratios else None,
        "ratio_min": min(ratios) if ratios else None,
        "ratio_max": max(ratios) if ratios else None,
        "ref_images_per_s": med.get("ref"),
        "ours_images_per_s": med["ours"],
        # training FLOPs ~ 3 x forward FLOPs (forward + two backward matmuls per forward one)
        "gflops_per_s_ref": 3 * gflops["ref"] * med["ref"] if "ref" in med else None,
        "gflops_per_s_ours": 3 * gflops["ours"] * med["ours"],
        "forward_gflops_per_image": gflops,
        "peak_rss_mb_ref": max(peak["ref"]) if peak.get("ref") else None,
        "peak_rss_mb_ours": max(peak["ours"]) if peak.get("ours") else None,
        "rounds": {
            "ref_images_per_s": per_round.get("ref", []),
            "ours_images_per_s": per_round["ours"],
            "ratio": ratios,
        },
        # contention-robust companion: images per CPU-second of this process plus the reference's
        # DataLoader workers (OpenMP threads that spin while waiting count as busy)
        "cpu": {
            "ref_images_per_cpu_s": statistics.median(per_cpu["ref"]) if "ref" in per_cpu else None,
            "ours_images_per_cpu_s": statistics.median(per_cpu["ours"]),
            "ratio_median": statistics.median(cpu_ratios) if cpu_ratios else None,
            "ratio_min": min(cpu_ratios) if cpu_ratios else None,
            "ratio_max": max(cpu_ratios) if cpu_ratios else None,
            "rounds": {"ref_images_per_cpu_s": per_cpu.get("ref", []), "ours_images_per_cpu_s": per_cpu["ours"],
                       "ratio": cpu_ratios},
        },
        "last_loss": {side: loop.last_loss for side, loop in loops.items()},
        "settings": {
            "data": str(data_root), "train_images": len(train), "rounds": rounds,
            "steps_per_round": steps_per_round, "warmup_steps": warmup, "batch_size": batch_size,
            "image_size": list(size), "threads": threads, "device": device, "device_name": device_name(device),
            "ours": {"amp": amp, "channels_last": channels_last, "folded_head": ours.folded,
                     "optimizer": type(ours.optimizer).__name__ + (" (fused)" if ours.optimizer.defaults.get("fused")
                                                                   else ""),
                     "augment": True, "data": "load_split (decode once, uint8) + BatchIterator"},
            "reference": ({"model": "transformers SegformerForSemanticSegmentation (MiT-B0, random init)",
                           "precision": "fp32", "data": f"DataLoader({workers} workers, shuffle) + PIL per step",
                           "optimizer": "Adam lr 1e-4"} if with_reference else None),
        },
        "versions": versions(),
        "notes": [
            "GFLOP/s = 3 x forward GFLOPs (torch.utils.flop_counter, model as defined, before folding) x images/s",
            "peak RSS = process VmHWM during that side's slices (both models and the cached data are resident); "
            "DataLoader worker memory is separate",
        ],
    }
    return result


def format_result(res: dict) -> str:
    s = res["settings"]
    lines = [
        f"ablate bench train: {res['decoder']}, batch {s['batch_size']}, {s['image_size'][0]}x{s['image_size'][1]}, "
        f"{s['rounds']} rounds x {s['steps_per_round']} steps, {s['threads']} threads, {s['device_name']}",
        f"ours: amp {s['ours']['amp']}, channels_last {s['ours']['channels_last']}, "
        f"folded head {s['ours']['folded_head']}, {s['ours']['optimizer']}",
    ]
    g, c = res["forward_gflops_per_image"], res["cpu"]
    if res["ratio_median"] is not None:
        lines += [
            f"images/s (median over rounds): reference {res['ref_images_per_s']:.2f}, ours {res['ours_images_per_s']:.2f}",
            f"ratio ours/reference: median {res['ratio_median']:.2f} (min {res['ratio_min']:.2f}, "
            f"max {res['ratio_max']:.2f})",
            f"achieved GFLOP/s (training FLOPs ~ 3 x forward {g['ref']:.2f} GFLOPs/image x images/s): "
            f"reference {res['gflops_per_s_ref']:.0f}, ours {res['gflops_per_s_ours']:.0f}",
            f"images per CPU-second (process + DataLoader workers): reference {c['ref_images_per_cpu_s']:.2f}, "
            f"ours {c['ours_images_per_cpu_s']:.2f}; ratio median {c['ratio_median']:.2f} "
            f"(min {c['ratio_min']:.2f}, max {c['ratio_max']:.2f})",
        ]
    else:
        lines += [
            f"images/s (median over rounds): ours {res['ours_images_per_s']:.2f} "
            f"(no reference: HF has no {res['decoder']} head)",
            f"achieved GFLOP/s (training FLOPs ~ 3 x forward {g['ours']:.2f} GFLOPs/image x images/s): "
            f"ours {res['gflops_per_s_ours']:.0f}",
        ]
    mem = []
    if res["peak_rss_mb_ref"] is not None:
        mem.append(f"reference {res['peak_rss_mb_ref']:.0f} MiB")
    if res["peak_rss_mb_ours"] is not None:
        mem.append(f"ours {res['peak_rss_mb_ours']:.0f} MiB")
    if mem:
        lines.append("peak RSS of the process during each side's slices: " + ", ".join(mem)
                     + " (DataLoader workers not included)")
    return "\n".join(lines)


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set (VmHWM) to the current RSS (Linux; False elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """This process's peak resident set since the last reset, MiB (``VmHWM``); None off Linux.

    DataLoader worker processes are not included.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    if os.name == "posix":
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return None
