"""Segmentor = encoder + decoder, and ``build_model``, the one way the toolkit makes a model."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .decoders import build_decoder, decoder_defaults, decoder_encoder
from .encoders import get_encoder, normalize_pretrained

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
    path. A full ``SegformerForSemanticSegmentation`` checkpoint also fills the decoder's weights
    when the decoder has ``load_pretrained_head`` (``all_mlp``) and the head fits (same num_classes and width). ``seed`` seeds the encoder init (identical
    across decoders) and, through a fixed offset, the decoder init.
    """
    encoder_name = decoder_encoder(decoder)  # ConfigError for unknown names, before any work
    source = normalize_pretrained(pretrained)
    torch.manual_seed(seed)
    encoder, head_state = get_encoder(encoder_name, pretrained=source)
    torch.manual_seed(seed + DECODER_SEED_OFFSET)
    dec = build_decoder(decoder, encoder.channels, num_classes, **decoder_cfg)
    head_loaded = False
    load_head = getattr(dec, "load_pretrained_head", None)  # a decoder that can take a checkpoint's head
    if head_state is not None and callable(load_head):
        head_loaded = load_head(head_state)
        if not head_loaded:
            warnings.warn(
                f"{source}: decode head does not fit {decoder} (num_classes/embed_dim differ); "
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
