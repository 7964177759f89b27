"""``skip_fused``: progressive upsampling + sequential top-down skip fusion (the report's proposal).

upsampling: progressive, as ``progressive`` (x2 bilinear + ``Refine`` per step; reduce to
            ``head_channels`` at 1/4, two refined x2 steps, classify at the input size).
fusion:     skip: start from the 1/32 projection; for 1/16, 1/8, 1/4 in turn: bring the
            running map to that level's actual size (+ ``Refine``), concat with that
            level's projection (``embed_dim``), 3x3 conv + BN + ReLU -> ``skip_channels``.

``skip_oneshot`` is the fourth cell of the ladder: the same skip fusion, but each
top-down step is a plain bilinear resize (no refinement) and, like ``all_mlp``, it
classifies at 1/4 and leaves the x4 jump to the segmentor. Comparing it with
``all_mlp`` isolates the fusion; comparing it with ``skip_fused`` isolates upsampling.

Settings:
    embed_dim (256)      width of the per-level projections, as ``all_mlp``
    skip_channels (64)   width of the top-down path; the 3x3 convs run up to 1/4 of the
                         input, so a narrow path keeps the added cost modest
    head_channels (64)   (``skip_fused`` only) width of the two full-resolution steps
    dropout (0.1)        dropout before the classifier
"""

from __future__ import annotations

from collections.abc import Sequence

from .ladder import LadderDecoder
from .registry import register_decoder


@register_decoder("skip_fused", strides=(4, 8, 16, 32))
class SkipFusedDecoder(LadderDecoder):
    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        *,
        embed_dim: int = 256,
        skip_channels: int = 64,
        head_channels: int = 64,
        dropout: float = 0.1,
    ):
        super().__init__(
            in_channels,
            num_classes,
            upsample="progressive",
            fusion="skip",
            embed_dim=embed_dim,
            skip_channels=skip_channels,
            head_channels=head_channels,
            dropout=dropout,
        )


@register_decoder("skip_oneshot", strides=(4, 8, 16, 32))
class SkipOneshotDecoder(LadderDecoder):
    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        *,
        embed_dim: int = 256,
        skip_channels: int = 64,
        dropout: float = 0.1,
    ):
        super().__init__(
            in_channels,
            num_classes,
            upsample="oneshot",
            fusion="skip",
            embed_dim=embed_dim,
            skip_channels=skip_channels,
            dropout=dropout,
        )
