"""Models: MiT-B0 / ResNet34 encoders, registered decoders, the segmentor and its cost."""

from .complexity import complexity_table, count_gflops, count_params
from .decoders import build_decoder, decoder_defaults, decoder_encoder, list_decoders, register_decoder
from .encoders import build_encoder, normalize_pretrained
from .segmentor import Segmentor, build_model

__all__ = [
    "Segmentor",
    "build_decoder",
    "build_encoder",
    "build_model",
    "complexity_table",
    "count_gflops",
    "count_params",
    "decoder_defaults",
    "decoder_encoder",
    "list_decoders",
    "normalize_pretrained",
    "register_decoder",
]
