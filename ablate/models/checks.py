"""Checks made before any run starts, on models built on the meta device (no memory, no weights, ~0.1 s).

``check_model``: a decoder on an encoder with its settings builds and runs at the study's image
size, so a level mismatch, a setting typo or a shape error is one line at study load, not an
hour into a run.
"""

from __future__ import annotations

import torch

from ablate.errors import ConfigError

from .decoders.registry import DEFAULT_ENCODER, decoder_class, decoder_encoder, decoder_strides
from .encoders import list_encoders


def build_on_meta(decoder: str, *, encoder: str | None = None, num_classes: int = 11, **decoder_cfg):
    """``build_model`` on the meta device with random init (shapes only)."""
    from .segmentor import build_model

    with torch.device("meta"):
        return build_model(decoder, num_classes=num_classes, encoder=encoder, pretrained=None, **decoder_cfg)


def min_train_batch(decoder: str) -> int:
    """The smallest training batch a decoder works with (2 for BatchNorm after global pooling)."""
    return int(getattr(decoder_class(decoder), "min_train_batch", 1))


def check_model(decoder: str, *, encoder: str | None = None, decoder_cfg: dict | None = None, num_classes: int = 11,
                image_size=(64, 64), batch_size: int | None = None) -> None:
    """ConfigError (one line) unless ``decoder`` on ``encoder`` with ``decoder_cfg`` builds and maps an image of
    ``image_size`` to logits of that size; ``batch_size``: the training batch, checked against ``min_train_batch``."""
    name = encoder or decoder_encoder(decoder)
    where = f"decoder {decoder!r} on encoder {name!r}"
    need = min_train_batch(decoder)
    if batch_size is not None and int(batch_size) < need:
        raise ConfigError(f"{where} needs a training batch of at least {need} (BatchNorm after global pooling), "
                          f"got batch_size {batch_size}")
    try:
        model = build_on_meta(decoder, encoder=encoder, num_classes=num_classes, **(decoder_cfg or {}))
        h, w = (int(v) for v in image_size)
        with torch.no_grad():
            out = model.eval()(torch.empty(1, 3, h, w, device="meta"))
    except ConfigError as exc:
        if "takes encoder levels" in str(exc):
            fits = encoders_that_fit(decoder)
            raise ConfigError(f"{exc}; encoders that fit: {', '.join(fits) or 'none registered'}") from None
        raise
    except Exception as exc:  # the decoder's own constructor or forward: user settings, reported in one line
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(f"{where} does not build or run at {h}x{w}: {type(exc).__name__}: {msg}") from None
    if tuple(out.shape) != (1, int(num_classes), h, w):
        raise ConfigError(f"{where} gives logits of shape {tuple(out.shape)}, expected (1, {num_classes}, {h}, {w})")


def encoders_that_fit(decoder: str) -> list[str]:
    """Registered encoders (plus ``timm:<name>`` as a hint) whose levels hold every stride the decoder takes."""
    want = decoder_strides(decoder)
    names = list_encoders() if want is not None else [DEFAULT_ENCODER]
    fits = []
    for name in names:
        with torch.device("meta"):
            from .encoders import build_encoder

            strides = build_encoder(name, pretrained=None).strides
        if want is None or set(want) <= set(strides):
            fits.append(name)
    return fits
