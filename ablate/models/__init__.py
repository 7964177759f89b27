"""Models: the encoder registry, the decoder registry (one file per decoder), the segmentor and its cost."""

from .complexity import complexity_table, count_gflops, count_params
from .decoders import build_decoder, decoder_defaults, decoder_encoder, list_decoders, register_decoder
from .encoders import build_encoder, get_encoder, list_encoders, normalize_pretrained, register_encoder
from .segmentor import Segmentor, build_model

__all__ = [
    "Segmentor",
    "build_decoder",
    "build_encoder",
    "get_encoder",
    "list_encoders",
    "register_encoder",
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
