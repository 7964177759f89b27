"""Training settings, and how 'auto' device / precision choices are resolved.

A TrainConfig is flat so that it can be swept by Optuna and saved as JSON with
every result (``asdict``); ``from_dict`` reads it back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ablate.errors import ConfigError

OPTIMIZERS = ("adam", "adamw")
AMP_MODES = ("auto", "bf16", "fp16", "off")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    decoder: str = "all_mlp"
    encoder: str | None = None  # None: the decoder's default encoder (ablate.models.decoder_encoder)
    pretrained: str = "none"
    image_size: tuple[int, int] = (256, 256)
    batch_size: int = 4
    epochs: int = 15
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    poly_power: float = 1.0
    seed: int = 0
    augment: bool = True
    amp: str = "auto"  # auto | bf16 | fp16 | off
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = True
    fold_head: bool = True  # all_mlp only: fold linear_fuse into the projections (same math, ~1.5x step)
    fp32_attention: bool = True  # MiT attention in fp32 under CPU bf16 autocast (faster on this CPU)
    compile: bool = False  # torch.compile the model for the step (CUDA: mode reduce-overhead = CUDA graphs)
    eval_batch_size: int = 8
    grouped: bool = True  # CamVid colour layouts: 32 classes grouped into SegNet's 11
    layout: str | None = None  # the dataset layout to read the data with (None: detected)
    max_steps: int | None = None  # stop after this many optimiser steps (smoke tests, benchmarks)
    log_every: int = 25  # steps between loss syncs (progress bar, NaN check)
    decoder_cfg: dict = field(default_factory=dict)

    def __post_init__(self):
        self.image_size = parse_size(self.image_size)
        self.validate()

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"unknown amp mode {self.amp!r}; use one of {', '.join(AMP_MODES)}")
        if self.device not in DEVICES:
            raise ConfigError(f"unknown device {self.device!r}; use one of {', '.join(DEVICES)}")
        for name in ("batch_size", "epochs", "eval_batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {self.max_steps}")
        if not self.poly_power >= 0:
            raise ConfigError(f"poly_power must be >= 0 (0 = constant LR), got {self.poly_power}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be a whole number from 0 to 2**32-1, got {self.seed!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**d)


def parse_size(size) -> tuple[int, int]:
    """256 -> (256, 256); "360x480" -> (360, 480) as (H, W); (h, w) kept."""
    try:
        if isinstance(size, str):
            parts = size.lower().replace("×", "x").split("x")
            hw = (int(parts[0]),) * 2 if len(parts) == 1 else tuple(int(p) for p in parts)
        elif isinstance(size, int):
            hw = (size, size)
        else:
            hw = tuple(int(p) for p in size)
    except (TypeError, ValueError):
        hw = ()
    if len(hw) != 2 or min(hw) < 1:
        raise ConfigError(f"bad image size {size!r}; use N or HxW, e.g. 256 or 360x480")
    return hw


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when present; 'cuda' without CUDA is a user error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but CUDA is not available; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


def resolve_amp(amp: str, device: str) -> str:
    """The precision actually used: 'bf16', 'fp16' or 'off'.

    auto: on CPU bf16 only where the hardware has native bf16 (AVX512-BF16 or AMX),
    since emulated bf16 is slower than fp32; on CUDA bf16 where supported, else fp16.
    """
    import torch

    if amp == "off":
        return "off"
    if device == "cpu":
        if amp == "fp16":
            raise ConfigError("fp16 autocast is for CUDA; on the CPU use --amp bf16 or --amp off")
        if amp == "auto":
            return "bf16" if cpu_has_native_bf16() else "off"
        return "bf16"
    if amp == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return amp


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
        if "avx512_bf16" in flags or "amx_bf16" in flags:
            return True
    except OSError:
        pass
    import torch

    try:  # non-Linux: ask oneDNN
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and "AMX" in (
            torch.backends.cpu.get_cpu_capability() or ""
        )
    except (AttributeError, RuntimeError):
        return False
