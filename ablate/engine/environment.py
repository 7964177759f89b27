"""What a result was measured on (library versions, device name) and how many threads it uses."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from functools import cache
from importlib import metadata


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@cache
def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    import torch

    names = ("transformers", "timm", "numpy", "optuna")
    return {"python": platform.python_version(), "torch": torch.__version__,
            **{n: package_version(n) for n in names}}


def device_name(device: str) -> str:
    """'NVIDIA H100 80GB HBM3' or the CPU model name, for the record."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def configure_threads(threads: int | str | None = None) -> int:
    """Set torch's intra-op threads; returns the count in use.

    ``None``: leave torch's default (the cores). An int: that many. ``"auto"``: the cores not busy
    with other processes by the 1-minute load average (at least 1), read once at start.

    Measured on the shared 2-core machine while ~3 other jobs ran (ablate step, folded head, bf16,
    batch 4, 256x256): 2 threads 1.7-3.5 s/step (OpenMP threads spin at barriers while a
    competing process holds the other core), 2 threads with ``OMP_WAIT_POLICY=PASSIVE`` in the
    environment ~0.78 s/step, 1 thread ~0.37 s/step. On an idle machine use the cores.
    Threads change only the order of some reductions, not what is learned.
    """
    import torch

    if threads == "auto":
        cores = os.cpu_count() or 1
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
        threads = max(1, min(cores, int(cores - busy + 0.5)))
    if threads is not None and int(threads) > 0:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()
