"""``ablate bench train``: training images/s of ablate's own step vs a plain Hugging Face loop.

Both sides run in one process, interleaved (reference slice, ours, reference, ours, ...), so
both see the same machine load; the ratio of each round pairs two neighbouring slices.

Reference (issue 5): HF ``SegformerForSemanticSegmentation`` (MiT-B0, random init, fp32), a
``torch.utils.data.DataLoader`` (2 workers, shuffle) over a Dataset that opens, converts and
resizes the PNGs with PIL at every step (image bilinear, label nearest, void 11 -> 255,
ImageNet normalisation), plain ``torch.optim.Adam`` (lr 1e-4), loss from
``model(pixel_values, labels=...)``.

Ours: ``fit``'s step (``ablate.engine.speed.train_step``) on ``build_model(decoder)`` with
decode-once uint8 data (``load_split``), ``BatchIterator`` augmentation, autocast per ``--amp``
(auto = bf16 where the CPU has native bf16), channels_last, fused Adam, poly LR, and the folded
all_mlp head (``prepare_model_for_training``).
"""

from __future__ import annotations

import json
import statistics
import time

import click
import numpy as np

DECODERS = ("all_mlp", "skip_fused", "progressive")


# ----------------------------------------------------------------------------- the reference


class PILSegNetDataset:
    """Opens, converts and resizes one SegNet-layout PNG pair per item with PIL (no caching)."""

    def __init__(self, pairs, size: tuple[int, int]):
        self.pairs = list(pairs)
        self.size = (int(size[0]), int(size[1]))  # (H, W)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        import torch
        from PIL import Image

        from ablate.data import IMAGENET_MEAN, IMAGENET_STD

        pair = self.pairs[i]
        h, w = self.size
        image = Image.open(pair.image).convert("RGB").resize((w, h), Image.BILINEAR)
        label = Image.open(pair.label).resize((w, h), Image.NEAREST)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        x = (x - mean) / std
        y = np.array(label)
        if y.ndim == 3:
            y = y[..., 0]
        y = torch.from_numpy(y.astype(np.int64))
        y[y >= 11] = 255  # void (11) -> ignore
        return x.contiguous(), y


class ReferenceLoop:
    """The plain HF training loop of issue 5, one step at a time."""

    def __init__(self, root, *, size, batch_size: int, num_classes: int, device: str, workers: int = 2, seed: int = 0):
        import torch

        from ablate.data.layouts import detect_layout
        from ablate.engine.speed import hf_reference_model
        from ablate.errors import DataError

        layout = detect_layout(root)
        if layout.kind != "segnet":
            raise DataError(
                f"the HF reference loop reads the SegNet layout (train/ + trainannot/), {layout.root} is "
                f"{layout.kind!r}; point --data at a SegNet-layout CamVid, or bench another decoder"
            )
        dataset = PILSegNetDataset(layout.pairs("train"), size)
        generator = torch.Generator().manual_seed(seed)
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, num_workers=workers, generator=generator,
            persistent_workers=workers > 0,
        )
        self.wrapper = hf_reference_model(num_classes, seed=seed).to(device)
        self.model = self.wrapper.hf.train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.device = device
        self._it = None
        self.last_loss = float("nan")

    def next_batch(self):
        if self._it is None:
            self._it = iter(self.loader)
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            return next(self._it)

    def step(self) -> int:
        images, labels = self.next_batch()
        images, labels = images.to(self.device), labels.to(self.device)
        loss = self.model(pixel_values=images, labels=labels).loss
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self._loss = loss.detach()
        return images.shape[0]

    def finish(self) -> None:
        self.last_loss = float(self._loss)

    def worker_cpu_seconds(self) -> float:
        """CPU seconds used so far by the live DataLoader workers (0 without workers or off Linux)."""
        workers = getattr(self._it, "_workers", None) or []
        return sum(_proc_cpu_seconds(w.pid) for w in workers)


def _proc_cpu_seconds(pid) -> float:
    """utime + stime of a process from /proc/<pid>/stat; 0.0 when unreadable."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


# ----------------------------------------------------------------------------- ours


class OursLoop:
    """``fit``'s training step on ablate's model and data (see module docstring)."""

    def __init__(self, train, *, decoder: str, batch_size: int, device: str, amp: str, channels_last: bool,
                 fold_head: bool, seed: int = 0):
        import torch

        from ablate.data import BatchIterator
        from ablate.engine.config import TrainConfig
        from ablate.engine.speed import make_optimizer, prepare_model_for_training
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
        total = max(1, len(self.batches) * self.cfg.epochs)
        self.scheduler = torch.optim.lr_scheduler.PolynomialLR(self.optimizer, total_iters=total,
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
        from ablate.engine.speed import train_step

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
    from ablate.engine.speed import peak_rss_mb, reset_peak_rss

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
    from ablate.engine.environment import device_name, versions
    from ablate.engine.speed import configure_threads
    from ablate.errors import ConfigError

    if decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {decoder!r} for bench train; use one of {', '.join(DECODERS)}")
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


@click.command("train")
@click.option("--data", "data", default=None, help="Dataset folder (default: $ABLATE_DATA or the download cache).")
@click.option("--decoder", type=click.Choice(DECODERS), default="all_mlp", show_default=True,
              help="Our decoder; the HF reference runs only for all_mlp.")
@click.option("--rounds", type=int, default=5, show_default=True, help="Interleaved rounds.")
@click.option("--steps-per-round", type=int, default=20, show_default=True, help="Training steps per side per round.")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--image-size", default="256", show_default=True, help="N or HxW.")
@click.option("--threads", default=None,
              help="torch intra-op threads for both sides: N, or 'auto' (cores not busy by load average); "
                   "default: torch's choice.")
@click.option("--amp", type=click.Choice(["auto", "bf16", "fp16", "off"]), default="auto", show_default=True,
              help="Our precision; the reference is always fp32.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--fold-head/--no-fold-head", default=True, show_default=True,
              help="Fold all_mlp's 1x1 fuse into the projections (same function, ~2x faster step).")
@click.option("--warmup", type=int, default=2, show_default=True, help="Untimed steps per side first.")
@click.option("--workers", type=int, default=2, show_default=True, help="DataLoader workers of the reference.")
@click.option("--cache-dir", default=None, help="Decode-once cache folder (default $ABLATE_CACHE or ~/.cache/ablate).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def bench_train_command(data, decoder, rounds, steps_per_round, batch_size, image_size, threads, amp, device,
                        channels_last, fold_head, warmup, workers, cache_dir, as_json):
    """Training images/s of ablate vs a plain Hugging Face loop, interleaved in one process."""
    from ablate.data import resolve_data_root

    root = resolve_data_root(data)
    echo = lambda msg: click.echo(msg, err=True)  # noqa: E731  (progress on stderr; stdout stays one JSON object)
    res = run_bench(root, decoder=decoder, rounds=rounds, steps_per_round=steps_per_round, batch_size=batch_size,
                    image_size=image_size, threads=threads, amp=amp, device=device, channels_last=channels_last,
                    fold_head=fold_head, warmup=warmup, workers=workers, cache_dir=cache_dir, echo=echo)
    click.echo(json.dumps(res, indent=None if as_json else 2) if as_json else format_result(res))
