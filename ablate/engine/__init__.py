"""Training (config, the one step, fit / evaluate / train_run), metrics and latency measurement.

Names are imported lazily so that ``ablate train --help`` and the config
dataclass stay free of torch until something is actually run.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "parse_size": "config", "resolve_device": "config", "resolve_amp": "config",
    "confusion_matrix": "metrics", "batch_confusion": "metrics", "metrics_from_confusion": "metrics",
    "fit": "train", "evaluate": "train", "train_run": "train", "FitResult": "train", "EvalResult": "train",
    "Pruned": "train",
    "segmentation_loss": "step", "train_step": "step", "make_optimizer": "step", "make_scheduler": "step",
    "autocast_context": "step", "prepare_model_for_training": "step",
    "measure_latency": "latency", "measure_study_latency": "latency", "study_models": "latency",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"ablate.engine.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ablate.engine' has no attribute {name!r}")
