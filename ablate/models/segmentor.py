"""Segmentor = encoder + decoder, and ``build_model``, the one way the toolkit makes a model."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .decoders import build_decoder, decoder_defaults, decoder_encoder
from .decoders.registry import select_levels
from .encoders import check_encoder_name, get_encoder, normalize_pretrained

# Offset for the decoder's seed: decoders get their own stream, so changing a decoder
# never changes the encoder init, and the encoder init never depends on the decoder.
DECODER_SEED_OFFSET = 1_000_003


class Segmentor(nn.Module):
    """``forward(x [B,3,H,W]) -> logits [B,C,H,W]``: the encoder's levels at ``in_index`` (all when None) go to
    the decoder, whose logits are resized bilinearly to the input size."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        decoder_name: str,
        pretrained: str = "none",
        config: dict | None = None,
        in_index: list[int] | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.decoder_name = decoder_name
        self.pretrained = pretrained
        self.config = dict(config or {})
        # None: every level, in order (the usual case); else the levels the decoder takes (mmseg's in_index)
        self.in_index = None if in_index is None or list(in_index) == list(range(len(encoder.channels))) \
            else [int(i) for i in in_index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = getattr(self.decoder, "input_multiple", None)  # smp's heads need H, W divisible by it
        if multiple and (height % multiple or width % multiple):
            x = F.pad(x, (0, -width % multiple, 0, -height % multiple))  # right/bottom; cropped off below
        features = self.encoder(x)
        if self.in_index is not None:
            features = [features[i] for i in self.in_index]
        logits = self.decoder(features)
        if logits.shape[-2:] != x.shape[-2:]:
            # HF's own upsampling of SegFormer logits: bilinear, align_corners=False
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if x.shape[-2:] != (height, width):
            logits = logits[..., :height, :width]
        return logits


def build_model(
    decoder: str, *, num_classes: int, encoder: str | None = None, pretrained: str | None = None, seed: int = 0,
    **decoder_cfg
) -> Segmentor:
    """Build encoder + named decoder; ``encoder`` None is the decoder's default (``decoder_encoder``).

    ``pretrained``: None/"none" (random init, recorded as "none"), a Hugging Face id, or a local
    path. A full ``SegformerForSemanticSegmentation`` checkpoint also fills the decoder's weights
    when the decoder has ``load_pretrained_head`` (``all_mlp``) and the head fits (same num_classes and width). ``seed`` seeds the encoder init (identical
    across decoders) and, through a fixed offset, the decoder init.
    """
    encoder_name = encoder or decoder_encoder(decoder)  # ConfigError for unknown names, before any work
    check_encoder_name(encoder_name)
    source = normalize_pretrained(pretrained)
    torch.manual_seed(seed)
    enc, head_state = get_encoder(encoder_name, pretrained=source)
    in_index = select_levels(decoder, enc.strides, encoder=f"encoder {encoder_name!r}")
    torch.manual_seed(seed + DECODER_SEED_OFFSET)
    dec = build_decoder(decoder, [enc.channels[i] for i in in_index], num_classes,
                        in_strides=[enc.strides[i] for i in in_index], **decoder_cfg)
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
    model = Segmentor(enc, dec, decoder_name=decoder, pretrained=source or "none", config=config, in_index=in_index)
    return model.train()  # HF's from_pretrained leaves modules in eval mode
