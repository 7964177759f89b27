"""Decoders, registered by name. Importing this package registers all of them."""

from . import all_mlp, progressive, skip_fused, smp_heads  # noqa: F401  (registration side effects)
from .registry import (
    build_decoder,
    decoder_defaults,
    decoder_encoder,
    decoder_strides,
    list_decoders,
    register_decoder,
)

__all__ = ["build_decoder", "decoder_defaults", "decoder_encoder", "decoder_strides", "list_decoders",
           "register_decoder"]
