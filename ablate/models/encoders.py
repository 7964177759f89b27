"""Encoders, registered by name (smp's ``get_encoder``): MiT-B0 from ``transformers`` and ResNet34
from ``timm``, both as lists of feature maps. A new encoder is a function ``(pretrained) ->
(module, decode_head_state | None)`` decorated with ``@register_encoder("name")``; a decoder
names the encoder it is built for (``register_decoder(..., encoder=...)``).

``pretrained`` is ``None``/``"none"`` (random init, only when asked for), ``"imagenet"``
(``nvidia/mit-b0`` or timm's default ResNet34 tag), a Hugging Face id, or a local path. Nothing may be downloadable, so every loading failure becomes one
``ConfigError`` line that names the way out (``--pretrained none`` or a local directory).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from ablate.errors import ConfigError

_ENCODERS: dict = {}
_RANDOM = {"", "none", "random", "scratch"}
# "imagenet" means each encoder's standard ImageNet weights, so one CLI value fits both
_IMAGENET = {"imagenet", "timm", "true", "default"}
MIT_B0_IMAGENET = "nvidia/mit-b0"
_HUB_ID = re.compile(r"^(hf-hub:)?[\w.-]+(/[\w.-]+)?$")


def register_encoder(name: str):
    """Decorator: ``@register_encoder("mit_b0")`` makes ``get_encoder("mit_b0")`` build it."""

    def wrap(fn):
        _ENCODERS[name] = fn
        return fn

    return wrap


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


def get_encoder(name: str, *, pretrained: str | None = None) -> tuple[nn.Module, dict | None]:
    """(encoder, decode-head state dict of a full checkpoint or None); ConfigError listing valid names."""
    if name not in _ENCODERS:
        raise ConfigError(f"unknown encoder {name!r}: choose one of {', '.join(list_encoders())}")
    return _ENCODERS[name](pretrained)


def normalize_pretrained(pretrained: str | None) -> str | None:
    """``None`` for random init, else the source string as given."""
    if pretrained is None or str(pretrained).strip().lower() in _RANDOM:
        return None
    return str(pretrained).strip()


def _local_path(source: str) -> Path | None:
    """The local path ``source`` names, or None when it reads as a hub id; ConfigError when it should exist."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    if source.startswith((".", "/", "~")) or not _HUB_ID.match(source):
        raise ConfigError(
            f"pretrained weights {source!r} not found: give an existing directory, a Hugging Face id, or --pretrained none"
        )
    return None


def _load_failed(source: str, exc: Exception) -> ConfigError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ConfigError(
        f"could not load pretrained weights {source!r} ({reason}); offline? use --pretrained none "
        "for random init or a local directory holding the checkpoint"
    )


class MiTEncoder(nn.Module):
    """``SegformerModel`` returning its four stage outputs (strides 4/8/16/32)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        cfg = model.config
        self.channels = tuple(cfg.hidden_sizes)
        strides, total = [], 1
        for s in cfg.strides:
            total *= s
            strides.append(total)
        self.strides = tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(pixel_values=x, output_hidden_states=True).hidden_states)


class TimmEncoder(nn.Module):
    """A timm ``features_only`` model; for ResNet34: 5 levels, strides 2..32, 64/64/128/256/512 channels."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.channels = tuple(model.feature_info.channels())
        self.strides = tuple(model.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(x))


@register_encoder("mit_b0")
def load_mit(pretrained: str | None) -> tuple[MiTEncoder, dict | None]:
    """MiT encoder and, for a full ``SegformerForSemanticSegmentation`` checkpoint, its decode-head state dict."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerModel

    source = normalize_pretrained(pretrained)
    if source is None:
        return MiTEncoder(SegformerModel(SegformerConfig())), None  # SegformerConfig() is MiT-B0
    if source.lower() in _IMAGENET:
        source = MIT_B0_IMAGENET
    local = _local_path(source)
    if local is not None and not (local.is_dir() and (local / "config.json").is_file()):
        raise ConfigError(
            f"{local} is not a Hugging Face checkpoint directory (needs config.json and weights)"
        )
    try:
        config = SegformerConfig.from_pretrained(source)
        if "SegformerForSemanticSegmentation" in (config.architectures or []):
            full = SegformerForSemanticSegmentation.from_pretrained(source)
            return MiTEncoder(full.segformer), full.decode_head.state_dict()
        return MiTEncoder(SegformerModel.from_pretrained(source)), None
    except ConfigError:
        raise
    except Exception as exc:  # network, missing files, wrong architecture: all user-fixable
        raise _load_failed(source, exc) from None


def _weights_file(path: Path) -> Path:
    if path.is_file():
        return path
    for name in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        if (path / name).is_file():
            return path / name
    found = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.pth")) + sorted(path.glob("*.pt"))
    if not found:
        raise ConfigError(
            f"no weights file (*.safetensors, *.pth, *.bin) in {path}: give a file or --pretrained none"
        )
    return found[0]


def load_resnet34(pretrained: str | None) -> TimmEncoder:
    """timm ResNet34 features; pretrained: None, "imagenet" (timm's default tag), an hf-hub id, or a local file/dir."""
    import timm

    source = normalize_pretrained(pretrained)
    kw = dict(features_only=True)
    if source is None:
        return TimmEncoder(timm.create_model("resnet34", pretrained=False, **kw))
    try:
        if source.lower() in _IMAGENET:
            model = timm.create_model("resnet34", pretrained=True, **kw)
        elif (local := _local_path(source)) is not None:
            overlay = dict(file=str(_weights_file(local)))
            model = timm.create_model("resnet34", pretrained=True, pretrained_cfg_overlay=overlay, **kw)
        else:
            model = timm.create_model("hf-hub:" + source.removeprefix("hf-hub:"), pretrained=True, **kw)
    except ConfigError:
        raise
    except Exception as exc:
        raise _load_failed(source, exc) from None
    return TimmEncoder(model)


@register_encoder("resnet34")
def _resnet34(pretrained: str | None) -> tuple[TimmEncoder, None]:
    return load_resnet34(pretrained), None


def build_encoder(name: str, *, pretrained: str | None = None) -> nn.Module:
    """An encoder by name; ``forward(x) -> list[Tensor]``, attributes ``.channels`` and ``.strides``."""
    return get_encoder(name, pretrained=pretrained)[0]
