"""The Hugging Face reference of ``ablate bench train`` and ``ablate bench latency``.

The reference is deliberately plain: HF ``SegformerForSemanticSegmentation``
(MiT-B0, random init, fp32), a ``torch.utils.data.DataLoader`` (2 workers, shuffle) over a
Dataset that opens, converts and resizes the PNGs with PIL at every step, plain
``torch.optim.Adam`` (lr 1e-4), loss from ``model(pixel_values, labels=...)``. It reuses
ablate's layout reader and constants only; its data path and optimiser are what ablate's
own are compared against, so they stay its own.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class FP32Only(nn.Module):
    """Runs the wrapped model in fp32 even inside a bf16 autocast region (a reference row)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.model(x.float())


class ChannelsLastInput(nn.Module):
    """Feeds NHWC images to a model prepared with ``channels_last=True``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


class HFSegformerLogits(nn.Module):
    """HF ``SegformerForSemanticSegmentation`` as ``forward(x) -> logits [B,C,H,W]`` at input size.

    The upsampling is HF's own (bilinear, align_corners=False, as in its loss). ``.hf`` is the
    wrapped model, e.g. for ``model.hf(pixel_values=x, labels=y).loss``.
    """

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.hf(pixel_values=x).logits
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits


def hf_reference_model(num_classes: int, *, seed: int = 0, attn: str = "sdpa") -> HFSegformerLogits:
    """Hugging Face's own SegFormer/MiT-B0 (random init, fp32, HF defaults) returning logits at input size.

    The reference of ``ablate bench train`` and the HF row of ``ablate bench latency``.
    ``SegformerConfig()`` is MiT-B0; ``semantic_loss_ignore_index`` is 255 (ablate's void).
    """
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(seed)
    config = SegformerConfig(num_labels=int(num_classes), semantic_loss_ignore_index=255)
    config._attn_implementation = attn
    model = SegformerForSemanticSegmentation(config)
    return HFSegformerLogits(model).train()


class PILPairDataset:
    """Opens, converts and resizes one image/label pair per item with PIL (no caching); the label's values
    become class indices through the dataset's layout (its value or colour table), after the resize."""

    def __init__(self, pairs, size: tuple[int, int], layout):
        self.pairs, self.layout = list(pairs), layout
        self.size = (int(size[0]), int(size[1]))  # (H, W)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
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
        y = torch.from_numpy(self.layout.label_indices(label, pair.label).astype(np.int64))
        return x.contiguous(), y


class ReferenceLoop:
    """The plain HF training loop (see the module docstring), one step at a time."""

    def __init__(self, root, *, size, batch_size: int, num_classes: int, device: str, workers: int = 2, seed: int = 0,
                 layout: str | None = None):
        from ablate.data.layouts import detect_layout

        found = detect_layout(root, layout=layout)
        dataset = PILPairDataset(found.pairs("train"), size, found)
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

    def wait_for_workers(self, timeout: float = 5.0) -> None:
        """Return once the DataLoader workers stop using CPU (their prefetch queue is full again).

        Called after each timed slice, untimed: otherwise the workers' catch-up after the slice
        runs during the other side's slice, on its time, and counts for neither.
        """
        import time

        last, deadline = self.worker_cpu_seconds(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.worker_cpu_seconds()
            if now - last < 0.005:
                return
            last = now

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


class ReferenceProcess:
    """``ReferenceLoop`` in a process of its own, driven slice by slice: the bench's reference side.

    A user's plain Hugging Face script runs in its own process, with the C library's default
    allocator and none of ablate's process settings (``ablate.engine.environment.keep_freed_memory``
    and ``request_huge_pages``, which ablate's training turns on). Inside the bench's process the reference would inherit them
    (measured: its step ~8 % faster, ours ~17 %), so it gets a spawned process and the same
    thread count; the slices still alternate with ours, so both see the same machine load.
    Methods as ``ablate.bench.timing.LocalSide``: ``warmup``, ``timed_slice``, ``close``; ``gflops`` and ``last_loss``.
    """

    def __init__(self, root, *, size, batch_size: int, num_classes: int, device: str, workers: int = 2,
                 seed: int = 0, threads: int | None = None, layout: str | None = None, imports=()):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # a fresh interpreter: nothing of this process's settings
        self._conn, child = ctx.Pipe()
        kwargs = {"root": str(root), "size": tuple(size), "batch_size": int(batch_size),
                  "num_classes": int(num_classes), "device": device, "workers": int(workers), "seed": int(seed),
                  "layout": layout, "imports": [str(p) for p in imports]}
        self._proc = ctx.Process(target=_serve_reference, args=(child, kwargs, threads),
                                 name="ablate-bench-reference")
        from ablate.engine.environment import without_ablate_process_settings

        with without_ablate_process_settings():
            self._proc.start()
        child.close()
        self.gflops = self._reply()
        self.last_loss = float("nan")

    def _reply(self):
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            self._proc.join(timeout=5)
            raise RuntimeError(f"the reference process ended unexpectedly (exit code {self._proc.exitcode})") from None
        if kind == "error":
            self.close()
            from ablate import errors

            name, message = value
            cls = getattr(errors, name, None)
            raise (cls if isinstance(cls, type) and issubclass(cls, Exception) else RuntimeError)(message)
        return value

    def warmup(self, steps: int) -> None:
        self._conn.send(("warmup", int(steps)))
        self._reply()

    def timed_slice(self, steps: int):
        self._conn.send(("slice", int(steps)))
        result, self.last_loss = self._reply()
        return result

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(("close", None))
            except OSError:
                pass
            self._proc.join(timeout=30)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(timeout=5)
        self._conn.close()


def _serve_reference(conn, kwargs: dict, threads: int | None) -> None:
    """The reference process: build the loop, then run warm-ups and timed slices on request."""
    try:
        from ablate.bench.timing import LocalSide, timed_slice
        from ablate.models import count_gflops

        if threads:
            torch.set_num_threads(int(threads))
        from ablate.study.plugins import import_study_plugins

        import_study_plugins(kwargs.pop("imports", ()))  # a study file's own layout must be known here too
        loop = ReferenceLoop(**kwargs)
        conn.send(("ready", count_gflops(loop.wrapper, kwargs["size"])))
        while True:
            command, steps = conn.recv()
            if command == "close":
                break
            if command == "warmup":
                LocalSide(loop, kwargs["device"]).warmup(steps)
                conn.send(("ok", None))
            elif command == "slice":
                conn.send(("ok", (timed_slice(loop, steps, kwargs["device"]), loop.last_loss)))
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it there
        try:
            conn.send(("error", (type(exc).__name__, str(exc))))
        except OSError:
            pass
    finally:
        conn.close()

