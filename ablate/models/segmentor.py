"""Segmentor = encoder + decoder, and ``build_model``, the one way the toolkit makes a model."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .decoders import build_decoder, decoder_defaults, decoder_encoder
from .decoders.all_mlp import head_fits, load_hf_decode_head
from .encoders import load_mit, load_resnet34, normalize_pretrained

# Offset for the decoder's seed: decoders get their own stream, so changing a decoder
# never changes the encoder init, and the encoder init never depends on the decoder.
DECODER_SEED_OFFSET = 1_000_003


class Segmentor(nn.Module):
    """``forward(x [B,3,H,W]) -> logits [B,C,H,W]``: decoder logits resized bilinearly to the input size."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        decoder_name: str,
        pretrained: str = "none",
        config: dict | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.decoder_name = decoder_name
        self.pretrained = pretrained
        self.config = dict(config or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(self.encoder(x))
        if logits.shape[-2:] != x.shape[-2:]:
            # HF's own upsampling of SegFormer logits: bilinear, align_corners=False
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits


def build_model(
    decoder: str, *, num_classes: int, pretrained: str | None = None, seed: int = 0, **decoder_cfg
) -> Segmentor:
    """Build encoder + named decoder.

    ``pretrained``: None/"none" (random init, recorded as "none"), a Hugging Face id, or a local
    path. A full ``SegformerForSemanticSegmentation`` checkpoint also fills ``all_mlp``'s weights
    when its head fits (same num_classes and width). ``seed`` seeds the encoder init (identical
    across decoders) and, through a fixed offset, the decoder init.
    """
    encoder_name = decoder_encoder(decoder)  # ConfigError for unknown names, before any work
    source = normalize_pretrained(pretrained)
    torch.manual_seed(seed)
    head_state = None
    if encoder_name == "mit_b0":
        encoder, head_state = load_mit(source)
    else:
        encoder = load_resnet34(source)
    torch.manual_seed(seed + DECODER_SEED_OFFSET)
    dec = build_decoder(decoder, encoder.channels, num_classes, **decoder_cfg)
    head_loaded = False
    if head_state is not None and decoder == "all_mlp":
        if head_fits(dec, head_state):
            load_hf_decode_head(dec, head_state)
            head_loaded = True
        else:
            warnings.warn(
                f"{source}: decode head does not fit all_mlp (num_classes/embed_dim differ); "
                "loaded the encoder only",
                stacklevel=2,
            )
    config = {
        "decoder": decoder,
        "encoder": encoder_name,
        "num_classes": int(num_classes),
        "pretrained": source or "none",
        "decode_head_pretrained": head_loaded,
        "seed": int(seed),
        **decoder_defaults(decoder),
        **decoder_cfg,
    }
    model = Segmentor(encoder, dec, decoder_name=decoder, pretrained=source or "none", config=config)
    return model.train()  # HF's from_pretrained leaves modules in eval mode
