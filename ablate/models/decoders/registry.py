"""Decoder registry, in the style of timm's ``_registry.py``.

A decoder class registers itself under a name together with the encoder it is
built for; ``build_decoder`` checks the flat settings against the class's
keyword arguments so a typo in a study file is a one-line ``ConfigError``
rather than a silently ignored setting.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from ablate.errors import ConfigError

_DECODERS: dict[str, type] = {}
_ENCODERS: dict[str, str] = {}
# Constructor arguments every decoder takes positionally; not user settings.
_STRUCTURAL = ("in_channels", "num_classes")


def register_decoder(name: str, *, encoder: str = "mit_b0"):
    """Class decorator: ``@register_decoder("all_mlp")`` makes the class buildable by name."""

    def wrap(cls: type) -> type:
        if name in _DECODERS and _same_definition(_DECODERS[name], cls) is False:
            raise ValueError(f"decoder {name!r} is already registered by {_DECODERS[name].__name__}")
        _DECODERS[name] = cls
        _ENCODERS[name] = encoder
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


def decoder_encoder(name: str) -> str:
    """The encoder a decoder is built for (``mit_b0`` or ``resnet34``)."""
    _check_name(name)
    return _ENCODERS[name]


def decoder_defaults(name: str) -> dict:
    """Every setting of a decoder with its default value."""
    params = inspect.signature(_check_name(name).__init__).parameters
    return {
        key: p.default
        for key, p in params.items()
        if key not in ("self", *_STRUCTURAL) and p.kind is not p.VAR_KEYWORD
    }


def build_decoder(name: str, in_channels: Sequence[int], num_classes: int, **cfg):
    """Build a registered decoder from flat keyword settings; unknown names or settings raise ConfigError."""
    cls = _check_name(name)
    valid = decoder_defaults(name)
    unknown = sorted(set(cfg) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} for decoder {name!r}: "
            f"valid settings are {', '.join(sorted(valid)) or '(none)'}"
        )
    return cls(list(in_channels), int(num_classes), **cfg)
