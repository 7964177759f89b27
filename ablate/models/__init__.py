"""Models: the encoder registry, the decoder registry (one file per decoder), the segmentor and its cost."""

from .checks import check_model, min_train_batch
from .complexity import complexity_table, count_gflops, count_params
from .decoders import (
    build_decoder,
    decoder_defaults,
    decoder_encoder,
    decoder_strides,
    list_decoders,
    register_decoder,
)
from .encoders import (
    build_encoder,
    check_encoder_name,
    get_encoder,
    list_encoders,
    normalize_pretrained,
    register_encoder,
)
from .segmentor import Segmentor, build_model

__all__ = [
    "Segmentor",
    "build_decoder",
    "build_encoder",
    "build_model",
    "check_encoder_name",
    "check_model",
    "complexity_table",
    "count_gflops",
    "count_params",
    "decoder_defaults",
    "decoder_encoder",
    "decoder_strides",
    "get_encoder",
    "list_decoders",
    "list_encoders",
    "min_train_batch",
    "normalize_pretrained",
    "register_decoder",
    "register_encoder",
]
