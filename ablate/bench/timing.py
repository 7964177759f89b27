"""Timing one side of ``ablate bench train``: a slice of steps, its images/s, CPU use and peak memory.

Both sides call ``timed_slice``: ablate's loop in the bench's process, the Hugging Face
reference in a process of its own (``ablate.bench.reference.ReferenceProcess``).
"""

from __future__ import annotations

import os
import time

from ablate.engine.latency import synchronize


def timed_slice(loop, steps: int, device: str) -> tuple[float, float, float | None]:
    """images/s (wall), images per CPU-second (this process + DataLoader workers) and peak RSS (MiB)."""
    workers = getattr(loop, "worker_cpu_seconds", lambda: 0.0)
    reset_peak_rss()
    synchronize(device)
    cpu0 = time.process_time() + workers()
    start = time.perf_counter()
    images = 0
    for _ in range(steps):
        images += loop.step()
    synchronize(device)
    seconds = time.perf_counter() - start
    cpu = time.process_time() + workers() - cpu0
    loop.finish()
    peak = peak_rss_mb()
    getattr(loop, "wait_for_workers", lambda: None)()  # untimed: the reference's prefetch catches up
    return images / seconds, images / max(cpu, 1e-9), peak


class LocalSide:
    """A loop timed in the bench's own process (ablate's side; the reference with ``reference_process=False``)."""

    def __init__(self, loop, device: str):
        self.loop, self.device = loop, device

    def warmup(self, steps: int) -> None:
        for _ in range(steps):
            self.loop.step()
        self.loop.finish()
        getattr(self.loop, "wait_for_workers", lambda: None)()

    def timed_slice(self, steps: int):
        return timed_slice(self.loop, steps, self.device)

    @property
    def last_loss(self) -> float:
        return self.loop.last_loss

    def close(self) -> None:
        pass


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
