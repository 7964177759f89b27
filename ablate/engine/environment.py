"""What a result was measured on: library versions, device name, threads."""

from __future__ import annotations

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
