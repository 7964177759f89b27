"""``all_mlp``: SegFormer's all-MLP decode head, the baseline of the ladder.

upsampling: one-shot bilinear to 1/4; the segmentor does one x4 jump to the input size.
fusion:     parallel: per-level linear -> ``embed_dim``, concat (1/32 first, as HF),
            1x1 fuse (no bias) + BN + ReLU, dropout, 1x1 classifier at 1/4.

Numerically identical to HF's ``SegformerDecodeHead`` given the same weights; the
parameter names are HF's (``linear_c.{i}.proj``, ``linear_fuse``, ``batch_norm``,
``classifier``), so a checkpoint's decode head loads directly (see ``load_hf_decode_head``).

Settings:
    embed_dim (256)  width of the per-level projections and of the fused map
                     (HF's ``decoder_hidden_size``; 256 for MiT-B0/B1)
    dropout (0.1)    dropout before the classifier (HF's ``classifier_dropout_prob``)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ablate.errors import ConfigError

from .ladder import LadderDecoder
from .registry import register_decoder


@register_decoder("all_mlp", encoder="mit_b0")
class AllMLPDecoder(LadderDecoder):
    def __init__(
        self, in_channels: Sequence[int], num_classes: int, *, embed_dim: int = 256, dropout: float = 0.1
    ):
        super().__init__(
            in_channels,
            num_classes,
            upsample="oneshot",
            fusion="parallel",
            embed_dim=embed_dim,
            dropout=dropout,
        )


# transformers >= 5 renames ``linear_c`` to ``linear_projections`` in memory; checkpoints keep ``linear_c``.
_HF_RENAMES = (("linear_projections.", "linear_c."),)


def hf_head_to_all_mlp(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``SegformerDecodeHead`` state dict (either HF naming) with our ``all_mlp`` names."""
    out = {}
    for key, value in state_dict.items():
        for old, new in _HF_RENAMES:
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    return out


def load_hf_decode_head(decoder: AllMLPDecoder, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load HF decode-head weights into ``decoder``; ConfigError when shapes or names disagree."""
    theirs = hf_head_to_all_mlp(state_dict)
    ours = decoder.state_dict()
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    bad_shape = sorted(k for k in set(ours) & set(theirs) if ours[k].shape != theirs[k].shape)
    if missing or unexpected or bad_shape:
        raise ConfigError(
            "the checkpoint's decode head does not fit all_mlp "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, shape mismatch {bad_shape[:3]}): "
            "use matching num_classes/embed_dim, or load only the encoder"
        )
    decoder.load_state_dict(theirs)


def head_fits(decoder: AllMLPDecoder, state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether an HF decode head has exactly ``decoder``'s names and shapes (e.g. same num_classes)."""
    theirs = hf_head_to_all_mlp(state_dict)
    ours = decoder.state_dict()
    return set(ours) == set(theirs) and all(ours[k].shape == theirs[k].shape for k in ours)
