"""``progressive``: the baseline with progressive interpolation; fusion unchanged.

upsampling: every jump is a chain of x2 bilinear steps (to the next level's actual
            size), each followed by a ``Refine`` (DW 3x3 + PW 1x1 + BN + ReLU): the 1/32
            map takes three steps to 1/4, 1/16 two, 1/8 one. After fusion at 1/4 the
            channels are reduced to ``head_channels`` (1x1 conv + BN + ReLU) and two more
            refined x2 steps reach the input size, where the classifier runs.
fusion:     parallel, as ``all_mlp`` (same projections, concat order, 1x1 fuse + BN + ReLU).

This rung isolates the effect of progressive interpolation.

Settings:
    embed_dim (256)      projection / fused width, as ``all_mlp``
    head_channels (64)   width of the two full-resolution steps; small because they run
                         at 1/2 and 1/1 of the input, where every channel is expensive
    dropout (0.1)        dropout before the classifier, as ``all_mlp``
"""

from __future__ import annotations

from collections.abc import Sequence

from .ladder import LadderDecoder
from .registry import register_decoder


@register_decoder("progressive", strides=(4, 8, 16, 32))
class ProgressiveDecoder(LadderDecoder):
    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        *,
        embed_dim: int = 256,
        head_channels: int = 64,
        dropout: float = 0.1,
    ):
        super().__init__(
            in_channels,
            num_classes,
            upsample="progressive",
            fusion="parallel",
            embed_dim=embed_dim,
            head_channels=head_channels,
            dropout=dropout,
        )
