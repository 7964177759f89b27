"""Decoder registry, in the style of timm's ``_registry.py``.

A decoder class registers itself under a name, with its default encoder and the encoder levels it
takes (by stride, mmseg's ``in_index``); ``build_decoder`` checks the flat settings against the
class's keyword arguments so a typo in a study file is a one-line ``ConfigError`` rather than a
silently ignored setting. The contract of a simple head: ``__init__(in_channels, num_classes, *,
settings...)`` and ``forward(features) -> logits``; a head that also wants the levels' strides takes
a keyword ``in_strides`` (structural, not a setting).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from ablate.errors import ConfigError

_DECODERS: dict[str, type] = {}
_ENCODERS: dict[str, str] = {}
_STRIDES: dict[str, tuple[int, ...] | None] = {}
DEFAULT_ENCODER = "mit_b0"
# Constructor arguments every decoder takes from the encoder; not user settings.
_STRUCTURAL = ("in_channels", "num_classes", "in_strides")


def register_decoder(name: str, *, encoder: str = DEFAULT_ENCODER, strides: Sequence[int] | None = None):
    """Class decorator: ``@register_decoder("all_mlp")`` makes the class buildable by name.

    ``encoder``: the encoder a variant gets when neither it nor its study names one. ``strides``: the
    encoder levels the decoder takes, by output stride (e.g. ``(4, 8, 16, 32)``); None takes every level.
    """

    def wrap(cls: type) -> type:
        if name in _DECODERS and not _same_definition(_DECODERS[name], cls):
            raise ValueError(f"decoder {name!r} is already registered by {_DECODERS[name].__name__}")
        _DECODERS[name] = cls
        _ENCODERS[name] = encoder
        _STRIDES[name] = None if strides is None else tuple(int(s) for s in strides)
        cls.decoder_name = name
        return cls

    return wrap


def _same_definition(old: type, new: type) -> bool:
    """A study file run again in one process (its content changed) redefines its classes: same place, same name."""
    return old is new or (old.__module__, old.__qualname__) == (new.__module__, new.__qualname__)


def list_decoders() -> list[str]:
    """Registered decoder names, sorted."""
    return sorted(_DECODERS)


def _check_name(name: str) -> type:
    if name not in _DECODERS:
        raise ConfigError(f"unknown decoder {name!r}: choose one of {', '.join(list_decoders())}")
    return _DECODERS[name]


def decoder_class(name: str) -> type:
    return _check_name(name)


def decoder_encoder(name: str) -> str:
    """The encoder a decoder gets by default (``mit_b0`` for most, ``resnet34`` for ``unet_r34``)."""
    _check_name(name)
    return _ENCODERS[name]


def decoder_strides(name: str) -> tuple[int, ...] | None:
    """The encoder strides a decoder takes (None: every level)."""
    _check_name(name)
    return _STRIDES[name]


def select_levels(name: str, strides: Sequence[int], *, encoder: str = "the encoder") -> list[int]:
    """Indices of the encoder levels the decoder takes; ConfigError (one line) when some are missing."""
    want = decoder_strides(name)
    strides = [int(s) for s in strides]
    if want is None:
        return list(range(len(strides)))
    missing = [s for s in want if s not in strides]
    if missing:
        raise ConfigError(f"decoder {name!r} takes encoder levels at strides {', '.join(map(str, want))}; "
                          f"{encoder} gives {', '.join(map(str, strides))} (no {', '.join(map(str, missing))})")
    return [strides.index(s) for s in want]


def decoder_defaults(name: str) -> dict:
    """Every setting of a decoder with its default value."""
    params = inspect.signature(_check_name(name).__init__).parameters
    return {
        key: p.default
        for key, p in params.items()
        if key not in ("self", *_STRUCTURAL) and p.kind is not p.VAR_KEYWORD
    }


def build_decoder(name: str, in_channels: Sequence[int], num_classes: int, *, in_strides=None, **cfg):
    """Build a registered decoder from flat keyword settings; unknown names or settings raise ConfigError."""
    cls = _check_name(name)
    valid = decoder_defaults(name)
    unknown = sorted(set(cfg) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} for decoder {name!r}: "
            f"valid settings are {', '.join(sorted(valid)) or '(none)'}"
        )
    if "in_strides" in inspect.signature(cls.__init__).parameters:
        if in_strides is None:
            raise ConfigError(f"decoder {name!r} needs the strides of its input levels (in_strides)")
        cfg["in_strides"] = [int(s) for s in in_strides]
    return cls(list(in_channels), int(num_classes), **cfg)
