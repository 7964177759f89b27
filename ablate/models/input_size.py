"""The smallest image a model takes, found by probing it on the meta device (shapes only, no memory).

MiT's first stage reduces its attention keys with an 8x8 stride-8 convolution over the 1/4 map, so
it needs at least 29 pixels a side; a ResNet takes anything. A decoder or an encoder added later has
its own limit: probing finds it without a table to keep up to date.
"""

from __future__ import annotations

from functools import lru_cache

from ablate.errors import ConfigError


class InputTooSmall(ConfigError):
    """The image is smaller than the model takes (the message names the smallest size)."""


PROBE_LIMIT = 1024  # sides probed; a model that takes nothing up to this is reported as such


def check_input_size(decoder: str, image_size, *, encoder: str | None = None, decoder_cfg: dict | None = None) -> None:
    """ConfigError (one line naming the smallest size) when ``decoder`` on ``encoder`` (None: the decoder's
    default) cannot run at ``image_size`` (H, W)."""
    from .decoders import decoder_encoder

    h, w = (int(v) for v in image_size)
    encoder = encoder or decoder_encoder(decoder)
    frozen = _frozen(decoder_cfg)
    if _runs(_meta_model(decoder, encoder, frozen), h, w):  # one shape-only forward; the search only on failure
        return
    smallest = smallest_input_size(decoder, encoder, frozen)
    if min(h, w) >= smallest:  # fails for another reason than its size: the caller's build or run says why
        return
    suggest = -(-smallest // 32) * 32
    raise InputTooSmall(f"image size {h}x{w} is too small for decoder {decoder!r} on encoder {encoder!r}: it takes "
                      f"at least {smallest}x{smallest}; use an image size of {suggest} or more (--image-size, or "
                      f"the study's image_size)")


@lru_cache(maxsize=64)
def smallest_input_size(decoder: str, encoder: str | None = None, frozen_cfg: tuple = ()) -> int:
    """The smallest side s for which an s x s image runs through ``decoder`` (binary search; run failures are
    monotone in the size: a layer that fits a size fits every larger one); 1 when no size limit shows."""
    model = _meta_model(decoder, encoder, frozen_cfg)
    if not _runs(model, PROBE_LIMIT, PROBE_LIMIT):  # not a size limit (e.g. an op the meta device lacks): no claim
        return 1
    lo, hi = 0, PROBE_LIMIT  # lo fails (or is 0), hi runs
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _runs(model, mid, mid) else (mid, hi)
    return hi


@lru_cache(maxsize=16)
def _meta_model(decoder: str, encoder: str | None, frozen_cfg: tuple = ()):
    """The model on the meta device (shapes only: no memory, no weights); an unknown setting is a ConfigError."""
    import json

    from .checks import build_on_meta

    return build_on_meta(decoder, encoder=encoder, num_classes=2, **{k: json.loads(v) for k, v in frozen_cfg}).eval()


def _runs(model, h: int, w: int) -> bool:
    import torch

    try:
        with torch.no_grad():
            model(torch.empty(1, 3, h, w, device="meta"))
    except Exception:  # e.g. "Calculated padded input size ... Kernel size can't be greater than actual input size"
        return False
    return True


def _frozen(cfg: dict | None) -> tuple:
    import json

    return tuple(sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in (cfg or {}).items()))
