"""``ablate run --workers N``: N worker processes on one machine sharing the study's storage.

Each worker is the same ``ablate run`` command started separately (``--workers 1``), so the
guarantees are those of separately started commands: the storage decides who runs what
(nothing runs twice), and a killed worker's run is retried after its heartbeat goes stale.
Workers die with the parent (Linux ``PR_SET_PDEATHSIG``), so a kill -9 of the command
stops them all and a rerun resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

GIB = 1024**3
CUDA_MEMORY_PER_WORKER = 6 * GIB  # a 256x256 MiT-B0/ResNet34 run at batch 4-16 stays well under this


def default_workers(device: str) -> int:
    """One on CPU (the threads of one run already use the cores); on CUDA as many as free memory allows
    at ``CUDA_MEMORY_PER_WORKER`` each, at most one per CPU core."""
    if device != "cuda":
        return 1
    import torch

    free, _ = torch.cuda.mem_get_info()
    return max(1, min(os.cpu_count() or 1, int(free // CUDA_MEMORY_PER_WORKER)))


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_workers(n: int, argv: list[str]) -> int:
    """Start ``python -m ablate <argv>`` ``n`` times (worker i sees $ABLATE_WORKER=i), wait for all;
    returns the first non-zero exit status (0 when every worker finished cleanly)."""
    procs = []
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    try:
        for i in range(1, n + 1):
            env = dict(os.environ, ABLATE_WORKER=f"w{i}")
            procs.append(subprocess.Popen([sys.executable, "-m", "ablate", *argv], env=env, preexec_fn=preexec))
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:  # Ctrl-C reached the workers too (same process group): let them stop
        for p in procs:
            p.wait()
        raise
    return next((c for c in codes if c != 0), 0)
