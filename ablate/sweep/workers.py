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


def default_workers(device: str, *, study=None, data_root=None) -> int:
    """``--workers auto``: the engine's rule (``ablate.engine.workers.suggested_workers``): one on CPU; on CUDA
    as many as free memory holds, by the measured footprint of the study's heaviest run plus its training
    split kept on the device."""
    from ablate.engine.workers import suggested_workers

    if device == "cpu" or study is None:
        return suggested_workers(device)
    from ablate.data.layouts import detect_layout

    cfg = heaviest_config(study)
    layout = detect_layout(data_root, layout=study.data.get("layout"), grouped=study.train.get("grouped", True))
    return suggested_workers(device, cfg=cfg, num_classes=layout.num_classes,
                             data_bytes=train_split_bytes(layout, cfg["image_size"]), imports=study.plugin_paths())


def heaviest_config(study) -> dict:
    """The TrainConfig fields of the study's variant with the most pixels per step (batch x height x width)."""
    configs = [study.train_settings(v, {}, seed=0) for v in study.variants]
    return max(configs, key=lambda c: int(c.get("batch_size", 4)) * int(c["image_size"][0]) * int(c["image_size"][1]))


def train_split_bytes(layout, size) -> int:
    """Bytes of the uint8 training split on the device (3 image bytes + 1 label byte per pixel); 0 if unknown."""
    try:
        n = len(layout.pairs("train"))
    except Exception:  # noqa: BLE001 - only sizes the default; the run itself reports data problems
        return 0
    return n * 4 * int(size[0]) * int(size[1])


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
