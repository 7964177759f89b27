"""Encoders, registered by name (smp's ``get_encoder``), each a list of feature maps with ``.channels`` and
``.strides``: MiT-B0..B5 (``mit_b0``..``mit_b5``) from ``transformers``, ResNets (``resnet18/34/50/101``) and
any ``timm`` ``features_only`` backbone as ``timm:<name>`` (``timm:convnext_tiny``, ``timm:hrnet_w18``).
A new encoder is a function ``(pretrained) -> (module, decode_head_state | None)`` decorated with
``@register_encoder("name")``; a variant chooses one (``Variant(decoder, encoder="mit_b2")``).

Why timm rather than smp's encoder registry for the CNNs: timm's ``features_only`` gives every one of
its backbones with the same ``feature_info`` (channels, strides) and the same weight loading (hub id or a
local file) we already use; smp's own ResNets are torchvision copies and its ``tu-`` encoders wrap timm
anyway, with smp's conventions (an identity level, zero-channel placeholders) that its decoders adapter
(``decoders/smp_heads.py``) adds back where a head needs them.

``pretrained`` is ``None``/``"none"`` (random init, only when asked for), ``"imagenet"``
(``nvidia/mit-bN``, or timm's default tag), a Hugging Face id, or a local path. Nothing may be downloadable, so
every loading failure becomes one
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
_HUB_ID = re.compile(r"^(hf-hub:)?[\w.-]+(/[\w.-]+)?$")


def register_encoder(name: str):
    """Decorator: ``@register_encoder("mit_b0")`` makes ``get_encoder("mit_b0")`` build it."""

    def wrap(fn):
        _ENCODERS[name] = fn
        return fn

    return wrap


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


TIMM_PREFIX = "timm:"


def check_encoder_name(name: str) -> None:
    """ConfigError (one line, listing the valid names) for a name that is neither registered nor ``timm:<model>``."""
    if name in _ENCODERS:
        return
    if isinstance(name, str) and name.startswith(TIMM_PREFIX):
        import timm

        model = name[len(TIMM_PREFIX):]
        if model and timm.is_model(model):
            return
        raise ConfigError(f"unknown timm model {model!r} in encoder {name!r}: see timm.list_models()")
    raise ConfigError(f"unknown encoder {name!r}: choose one of {', '.join(list_encoders())} or "
                      f"{TIMM_PREFIX}<any timm model>")


def get_encoder(name: str, *, pretrained: str | None = None) -> tuple[nn.Module, dict | None]:
    """(encoder, decode-head state dict of a full checkpoint or None); ConfigError listing valid names."""
    check_encoder_name(name)
    if name.startswith(TIMM_PREFIX):
        return load_timm(name[len(TIMM_PREFIX):], pretrained), None
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


# MiT-B0..B5 (SegFormer, Xie et al. 2021, table 6); B0 is SegformerConfig()'s default
_MIT_WIDE = [64, 128, 320, 512]
MIT_CONFIGS = {
    "b0": dict(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2], decoder_hidden_size=256),
    "b1": dict(hidden_sizes=_MIT_WIDE, depths=[2, 2, 2, 2], decoder_hidden_size=256),
    "b2": dict(hidden_sizes=_MIT_WIDE, depths=[3, 4, 6, 3], decoder_hidden_size=768),
    "b3": dict(hidden_sizes=_MIT_WIDE, depths=[3, 4, 18, 3], decoder_hidden_size=768),
    "b4": dict(hidden_sizes=_MIT_WIDE, depths=[3, 8, 27, 3], decoder_hidden_size=768),
    "b5": dict(hidden_sizes=_MIT_WIDE, depths=[3, 6, 40, 3], decoder_hidden_size=768),
}


def load_mit(pretrained: str | None, size: str = "b0") -> tuple[MiTEncoder, dict | None]:
    """MiT-``size`` encoder and, for a full ``SegformerForSemanticSegmentation`` checkpoint, its decode-head state
    dict. ``pretrained``: None (random init), "imagenet" (``nvidia/mit-<size>``), a hub id or a local directory."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerModel

    source = normalize_pretrained(pretrained)
    if source is None:
        return MiTEncoder(SegformerModel(SegformerConfig(**MIT_CONFIGS[size]))), None
    if source.lower() in _IMAGENET:
        source = f"nvidia/mit-{size}"
    local = _local_path(source)
    if local is not None and not (local.is_dir() and (local / "config.json").is_file()):
        raise ConfigError(
            f"{local} is not a Hugging Face checkpoint directory (needs config.json and weights)"
        )
    try:
        config = SegformerConfig.from_pretrained(source)
        want = MIT_CONFIGS[size]
        if (list(config.hidden_sizes), list(config.depths)) != (want["hidden_sizes"], want["depths"]):
            raise ConfigError(f"{source} holds a MiT with widths {list(config.hidden_sizes)} and depths "
                              f"{list(config.depths)}, not mit_{size}: give mit_{size} weights or choose its encoder")
        if "SegformerForSemanticSegmentation" in (config.architectures or []):
            full = SegformerForSemanticSegmentation.from_pretrained(source)
            return MiTEncoder(full.segformer), full.decode_head.state_dict()
        return MiTEncoder(SegformerModel.from_pretrained(source)), None
    except ConfigError:
        raise
    except Exception as exc:  # network, missing files, wrong architecture: all user-fixable
        raise _load_failed(source, exc) from None


for _size in MIT_CONFIGS:
    register_encoder(f"mit_{_size}")(lambda pretrained, _size=_size: load_mit(pretrained, _size))


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


def load_timm(name: str, pretrained: str | None) -> TimmEncoder:
    """timm ``features_only`` model; pretrained: None, "imagenet" (timm's default tag), an hf-hub id, or a local
    file/dir."""
    import timm

    source = normalize_pretrained(pretrained)
    kw = dict(features_only=True)
    if source is None:
        return TimmEncoder(timm.create_model(name, pretrained=False, **kw))
    try:
        if source.lower() in _IMAGENET:
            model = timm.create_model(name, pretrained=True, **kw)
        elif (local := _local_path(source)) is not None:
            overlay = dict(file=str(_weights_file(local)))
            model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kw)
        else:
            model = timm.create_model("hf-hub:" + source.removeprefix("hf-hub:"), pretrained=True, **kw)
    except ConfigError:
        raise
    except Exception as exc:
        raise _load_failed(source, exc) from None
    return TimmEncoder(model)


for _depth in (18, 34, 50, 101):  # the ResNets a reviewer asks for first, by their short names
    register_encoder(f"resnet{_depth}")(lambda pretrained, _n=f"resnet{_depth}": (load_timm(_n, pretrained), None))


def build_encoder(name: str, *, pretrained: str | None = None) -> nn.Module:
    """An encoder by name; ``forward(x) -> list[Tensor]``, attributes ``.channels`` and ``.strides``."""
    return get_encoder(name, pretrained=pretrained)[0]
