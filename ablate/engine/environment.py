"""What a result was measured on (library versions, device name), how many threads it uses, and how it allocates."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
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


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_FREED = {"done": False, "active": False}


def keep_freed_memory() -> bool:
    """Let this process reuse freed activation memory instead of handing it back; True when in effect.

    A CPU training step allocates and frees dozens of 1-32 MB activations. glibc serves blocks
    above its (dynamic) mmap threshold with fresh ``mmap`` pages and trims the heap once 2x that
    is free, so every step touches tens of MB of new pages: ~20,000 page faults and 40-110 ms of
    kernel time per step of ablate's all_mlp step (batch 4, 256x256, fp32, 2 threads, the
    project's 2-core VM). Fixing the thresholds (mmap above 32 MB only, no trimming) keeps those
    pages: ~0-800 faults and ~4 ms of kernel time per step, ~17 % faster steps (medians of 3
    alternated processes; ``ablate bench train`` runs it). The cost: the process keeps its peak
    heap until it exits, which a training process reaches every step anyway.

    glibc only (a no-op returning False elsewhere); idempotent; process-wide, so it is called
    where a training process starts (``fit``, ``fit_packed``, ``ablate bench train``'s own side),
    never in library code a user may import into another program.
    """
    if _KEEP_FREED["done"]:
        return _KEEP_FREED["active"]
    _KEEP_FREED["done"] = True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        ok = False
    _KEEP_FREED["active"] = ok
    return ok


HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"  # PyTorch's switch (c10 alloc_cpu), read once at its first allocation
_HUGE_PAGES = {"set_by_ablate": False}


def request_huge_pages() -> bool:
    """Ask PyTorch to back CPU tensors of 2 MB and more with transparent huge pages; True when requested.

    With ``keep_freed_memory`` the activations stay mapped; huge pages then cut the TLB misses of
    the memory-bound passes over them: ablate's all_mlp fp32 step (batch 4, 256x256, 2 threads)
    ~5 % faster (medians of 3 alternated processes, ``ablate bench train`` runs it). PyTorch
    reads the switch once, at its first allocation, so this acts only before torch is imported:
    the command line calls it first thing. A value the user set stands; the kernel must allow
    THP (``/sys/kernel/mm/transparent_hugepage/enabled`` not ``[never]``).
    """
    if os.environ.get(HUGE_PAGES_ENV) is not None:
        return os.environ[HUGE_PAGES_ENV] == "1"
    if "torch" in sys.modules or not _kernel_allows_thp():
        return False
    os.environ[HUGE_PAGES_ENV] = "1"
    _HUGE_PAGES["set_by_ablate"] = True
    return True


def huge_pages_requested() -> bool:
    """Whether this process asked PyTorch for huge pages (for the record of a result)."""
    return os.environ.get(HUGE_PAGES_ENV) == "1" and _kernel_allows_thp()


def _kernel_allows_thp() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[never]" not in f.read()
    except OSError:
        return False


@contextlib.contextmanager
def without_ablate_process_settings():
    """Environment for a child process that must start as a plain Python would (the bench's reference)."""
    saved = os.environ.pop(HUGE_PAGES_ENV, None) if _HUGE_PAGES["set_by_ablate"] else None
    try:
        yield
    finally:
        if saved is not None:
            os.environ[HUGE_PAGES_ENV] = saved
