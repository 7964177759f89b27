"""``unet_r34``: the report's other model, a U-Net decoder on timm's ResNet34 (reference, not a rung).

Built like segmentation_models_pytorch's ``Unet("resnet34")``: the five encoder levels
(strides 2, 4, 8, 16, 32; 64, 64, 128, 256, 512 channels) are walked top-down; each
block upsamples by nearest neighbour to the next skip's actual size (x2 after the last
skip), concatenates the skip and applies two 3x3 conv + BN + ReLU. A 3x3 conv
classifies at full resolution. With 11 classes the whole model has about 24.4 M
parameters, the report's figure.

Settings:
    decoder_channels ((256, 128, 64, 32, 16))  output width of each of the five blocks
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ablate.errors import ConfigError

from .blocks import ConvBNReLU
from .registry import register_decoder


class UnetBlock(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels + skip_channels, out_channels, 3)
        self.conv2 = ConvBNReLU(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        size = skip.shape[-2:] if skip is not None else (2 * x.shape[-2], 2 * x.shape[-1])
        x = F.interpolate(x, size=tuple(size), mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


@register_decoder("unet_r34", encoder="resnet34")
class UnetDecoder(nn.Module):
    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        *,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    ):
        super().__init__()
        decoder_channels = [int(c) for c in decoder_channels]
        if len(decoder_channels) != len(in_channels):
            raise ConfigError(
                f"decoder_channels needs {len(in_channels)} widths (one per encoder level), got {decoder_channels}"
            )
        deep_first = list(in_channels)[::-1]  # 512, 256, 128, 64, 64
        block_in = [deep_first[0], *decoder_channels[:-1]]
        # every block but the last meets a skip; the last goes from stride 2 to full size
        skips = [*deep_first[1:], 0]
        self.blocks = nn.ModuleList(UnetBlock(i, s, o) for i, s, o in zip(block_in, skips, decoder_channels))
        self.classifier = nn.Conv2d(decoder_channels[-1], num_classes, 3, padding=1)
        self._init_like_smp()

    def _init_like_smp(self) -> None:
        for m in self.blocks.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        deep_first = features[::-1]
        x, skips = deep_first[0], [*deep_first[1:], None]
        for block, skip in zip(self.blocks, skips):
            x = block(x, skip)
        return self.classifier(x)
