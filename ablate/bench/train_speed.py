"""``ablate bench train``: training images/s of ablate's own step vs a plain Hugging Face loop.

The sides run in alternating slices (reference, ours, reference, ours, ...), so both see the
same machine load; the ratio of each round pairs two neighbouring slices. Ours runs in this
process, set up as ``fit`` sets up a training process (``keep_freed_memory``); the reference
runs in a spawned process of its own with the C library's defaults, as a user's plain script
would (``--reference-in-process`` shares this one instead: a conservative ratio).

Reference (``ablate.bench.reference``): HF ``SegformerForSemanticSegmentation`` (MiT-B0, random init, fp32), a
``torch.utils.data.DataLoader`` (2 workers, shuffle) over a Dataset that opens, converts and
resizes the pairs with PIL at every step (image bilinear, label nearest and mapped by the layout,
ImageNet normalisation), plain ``torch.optim.Adam`` (lr 1e-4), loss from
``model(pixel_values, labels=...)``.

Ours: ``fit``'s step (``ablate.engine.step.train_step``) on ``build_model(decoder)`` with
decode-once uint8 data (``load_split``), ``BatchIterator`` augmentation, autocast per ``--amp``
(auto = bf16 where the CPU has native bf16), channels_last, fused Adam, poly LR, and the folded
all_mlp head (``prepare_model_for_training``).
"""

from __future__ import annotations

import statistics

from ablate.bench.reference import ReferenceLoop, ReferenceProcess
from ablate.bench.timing import LocalSide

# ----------------------------------------------------------------------------- ours


class OursLoop:
    """``fit``'s training step on ablate's model and data (see module docstring)."""

    def __init__(self, train, *, decoder: str, batch_size: int, device: str, amp: str, channels_last: bool,
                 fold_head: bool, seed: int = 0):
        import torch

        from ablate.data import BatchIterator
        from ablate.engine.config import TrainConfig
        from ablate.engine.noise import NoiseSource, noise_generator, seed_stochastic_layers
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
        seed_stochastic_layers(model, NoiseSource(noise_generator(seed, device)))  # as fit does
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


class PackedLoop:
    """``fit_packed``'s step: ``pack`` seeds of one decoder as one vmapped computation (images = pack x batch)."""

    def __init__(self, train, *, decoder: str, batch_size: int, device: str, amp: str, fold_head: bool, pack: int):
        import torch

        from ablate.data import BatchIterator
        from ablate.engine.config import TrainConfig
        from ablate.engine.packed import check_packable, prepare_pack
        from ablate.engine.step import make_optimizer, make_scheduler
        from ablate.models import build_model, count_gflops

        size = tuple(train.images.shape[-2:])
        self.cfgs = [TrainConfig(decoder=decoder, batch_size=batch_size, amp=amp, channels_last=False,
                                 fold_head=fold_head, seed=s, image_size=size, device=device) for s in range(pack)]
        check_packable(self.cfgs)
        models = [build_model(decoder, num_classes=len(train.class_names), pretrained=None, seed=c.seed)
                  for c in self.cfgs]
        self.gflops = count_gflops(models[0], size)
        self.pack = prepare_pack(models, self.cfgs, device)
        self.folded = fold_head and "forward" in vars(models[0].decoder)
        cfg = self.cfgs[0]
        self.iterators = [BatchIterator(train, batch_size, shuffle=True, augment=True, seed=c.seed, device=device)
                          for c in self.cfgs]
        self.optimizer = make_optimizer(self.pack.params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                        kind=cfg.optimizer)
        self.scheduler = make_scheduler(self.optimizer, total_steps=len(self.iterators[0]) * cfg.epochs,
                                        power=cfg.poly_power)
        self.device, self.amp = device, amp
        self.epoch = 0
        self._its = None
        self.losses = torch.zeros(len(self.iterators[0]), pack, device=device)
        self._i = 0
        self.last_loss = float("nan")

    def next_batches(self):
        if self._its is None:
            for it in self.iterators:
                it.set_epoch(self.epoch)
            self._its = [iter(it) for it in self.iterators]
            self._i = 0
        try:
            return [next(it) for it in self._its]
        except StopIteration:
            self.epoch += 1
            self._its = None
            return self.next_batches()

    def step(self) -> int:
        from ablate.engine.packed import packed_step

        batches = self.next_batches()
        self.losses[self._i] = packed_step(self.pack, self.optimizer, batches, device=self.device, amp=self.amp,
                                           scheduler=self.scheduler)
        self._i += 1
        return sum(b[0].shape[0] for b in batches)

    def finish(self) -> None:
        self.last_loss = float(self.losses[self._i - 1].mean()) if self._i else float("nan")


# ----------------------------------------------------------------------------- the bench


def _rounds(loops: dict, rounds: int, steps: int, say):
    """Alternate timed slices of the sides; per side the images/s, images per CPU-s and peak RSS of each round."""
    per_round = {side: [] for side in loops}
    per_cpu = {side: [] for side in loops}
    peak = {side: [] for side in loops}
    for r in range(rounds):
        for name, side in loops.items():
            ips, ipc, mem = side.timed_slice(steps)
            per_round[name].append(ips)
            per_cpu[name].append(ipc)
            if mem is not None:
                peak[name].append(mem)
        line = "  ".join(f"{name} {per_round[name][-1]:.2f} img/s ({per_cpu[name][-1]:.2f} per CPU-s)"
                         for name in loops)
        if "ref" in loops:
            line += f"  ratio {per_round['ours'][-1] / per_round['ref'][-1]:.2f}"
        say(f"round {r + 1}/{rounds}: {line}")
    return per_round, per_cpu, peak


def run_bench(data_root, *, layout: str | None = None, imports=(), decoder: str = "all_mlp", rounds: int = 5,
              steps_per_round: int = 20,
              batch_size: int = 4, image_size=(256, 256), threads: int | str | None = None, amp: str = "auto",
              device: str = "auto", channels_last: bool = True, fold_head: bool = True, warmup: int = 2,
              workers: int = 2, cache_dir=None, reference: bool | None = None, echo=None, pack: int = 1,
              reference_process: bool = True) -> dict:
    """Run the interleaved benchmark; returns the JSON-able result (see ``bench_train_command``).

    ``pack`` > 1: our side trains that many seeds packed (``ablate.engine.packed``), images/s over all of them.
    ``reference_process``: the reference runs in a spawned process of its own, as a user's script
    would (``ReferenceProcess``); False runs it in this process, where it shares ours' process
    settings (``keep_freed_memory``, huge pages), a conservative ratio.
    """
    from ablate.data import load_split
    from ablate.engine.config import parse_size, resolve_amp, resolve_device
    from ablate.engine.environment import (
        configure_threads,
        device_name,
        huge_pages_requested,
        keep_freed_memory,
        versions,
    )
    from ablate.errors import ConfigError
    from ablate.models import decoder_defaults

    decoder_defaults(decoder)  # ConfigError listing the registered decoders
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

    train = load_split(data_root, "train", size=size, cache_dir=cache_dir, progress=False, layout=layout)
    keeps_freed = keep_freed_memory()  # our side's process is set up as fit sets up a training process
    if int(pack) > 1:  # images/s over all packed seeds
        ours = PackedLoop(train, decoder=decoder, batch_size=batch_size, device=device, amp=amp,
                          fold_head=fold_head, pack=int(pack))
        channels_last = False
    else:
        ours = OursLoop(train, decoder=decoder, batch_size=batch_size, device=device, amp=amp,
                        channels_last=channels_last, fold_head=fold_head)
    loops = {"ours": LocalSide(ours, device)}
    gflops = {"ours": ours.gflops}
    try:
        if with_reference:
            spec = dict(size=size, batch_size=batch_size, num_classes=len(train.class_names), device=device,
                        workers=workers, layout=layout)
            if reference_process:
                ref = ReferenceProcess(data_root, threads=threads, imports=imports, **spec)
                gflops["ref"] = ref.gflops
            else:
                from ablate.models import count_gflops

                ref_loop = ReferenceLoop(data_root, **spec)
                ref = LocalSide(ref_loop, device)
                gflops["ref"] = count_gflops(ref_loop.wrapper, size)
            loops = {"ref": ref, "ours": loops["ours"]}
        for side in loops.values():  # warm-up: workers start, allocator and oneDNN caches fill
            side.warmup(max(0, warmup))
        per_round, per_cpu, peak = _rounds(loops, rounds, steps_per_round, say)
    finally:
        for side in loops.values():
            side.close()

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
            "ours": {"amp": amp, "channels_last": channels_last, "folded_head": ours.folded, "packed_seeds": int(pack),
                     "optimizer": type(ours.optimizer).__name__ + (" (fused)" if ours.optimizer.defaults.get("fused")
                                                                   else ""),
                     "augment": True, "data": "load_split (decode once, uint8) + BatchIterator",
                     "keeps_freed_memory": keeps_freed, "huge_pages": huge_pages_requested()},
            "reference": ({"model": "transformers SegformerForSemanticSegmentation (MiT-B0, random init)",
                           "precision": "fp32", "data": f"DataLoader({workers} workers, shuffle) + PIL per step",
                           "optimizer": "Adam lr 1e-4",
                           "process": ("its own (spawned; C library defaults)" if reference_process
                                       else "shared with ours (inherits keep_freed_memory and huge pages)")}
                          if with_reference else None),
        },
        "versions": versions(),
        "notes": [
            "GFLOP/s = 3 x forward GFLOPs (torch.utils.flop_counter, model as defined, before folding) x images/s",
            "peak RSS = VmHWM of the process that ran that side's slices (with the reference in-process, both "
            "models and the cached data are resident); DataLoader worker memory is separate",
        ],
    }
    return result


def format_result(res: dict) -> str:
    s = res["settings"]
    lines = [
        f"ablate bench train: {res['decoder']}, batch {s['batch_size']}, {s['image_size'][0]}x{s['image_size'][1]}, "
        f"{s['rounds']} rounds x {s['steps_per_round']} steps, {s['threads']} threads, {s['device_name']}",
        f"ours: amp {s['ours']['amp']}, channels_last {s['ours']['channels_last']}, "
        f"keeps freed memory {s['ours'].get('keeps_freed_memory')}, huge pages {s['ours'].get('huge_pages')}, "
        f"folded head {s['ours']['folded_head']}, {s['ours']['optimizer']}"
        + (f", {s['ours']['packed_seeds']} seeds packed (images/s over all of them)"
           if s["ours"].get("packed_seeds", 1) > 1 else ""),
    ]
    if s.get("reference"):
        lines.append(f"reference: HF SegFormer MiT-B0 fp32, {s['reference']['data']}, process "
                     f"{s['reference'].get('process', 'shared with ours')}")
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
