"""The classic heads from ``segmentation_models_pytorch`` (smp), registered by name, on any registered encoder.

Each adapter builds smp's own decoder class and smp's ``SegmentationHead`` (with smp's init), and
feeds them our encoder's levels in smp's convention: a list indexed by stride 1, 2, 4, ... up to the
deepest level, where a stride our encoder does not give (the input itself; 1/2 on MiT) is a
zero-channel placeholder of the right size, as smp's own MiT encoder does. The heads are smp's, not
copies; what is set here is only what smp's models set around them (depth, channels, head kernel and
upsampling). Settings are the decoder's constructor arguments (validated by the registry).

smp's models need an input divisible by the deepest stride (all but U-Net check it); the segmentor
pads the image right/bottom to a multiple of ``input_multiple`` and crops the logits back, so every
head runs at any size. Heads with BatchNorm after global pooling (``min_train_batch = 2``:
deeplabv3, deeplabv3plus, upernet, pan) cannot train on a batch of one: a study with a training
batch of 1 is refused at load, and an epoch's lone last image is dropped for them.

``pan`` needs the deepest level at least 8x8 (256x256 images on a 1/32 encoder): smaller studies are
refused at load. Not registered: DPT (it needs a ViT's prefix tokens).
"""

from __future__ import annotations

import math

import torch
from segmentation_models_pytorch import decoders as smp_decoders
from segmentation_models_pytorch.base import SegmentationHead
from segmentation_models_pytorch.base.initialization import initialize_decoder, initialize_head
from torch import nn

from ablate.errors import ConfigError

from .registry import register_decoder

PYRAMID = (4, 8, 16, 32)  # the heads that read 1/4 .. 1/32 (smp's features[2:])


class SmpHead(nn.Module):
    """smp decoder ``make_decoder(channels, depth)`` + ``SegmentationHead`` on the levels at ``in_strides``."""

    head_kernel = 1
    out_stride: int | None = 4  # the decoder output's stride (None: the deepest level's); the head upsamples it
    min_train_batch = 1
    min_deepest = 1  # the smallest height and width of the deepest level the head works on

    def __init__(self, in_channels, num_classes, *, in_strides, out_channels: int, **smp_kwargs):
        super().__init__()
        deepest = max(in_strides)
        depth = int(round(math.log2(deepest)))
        if 2 ** depth != deepest or len(set(in_strides)) != len(in_strides):
            raise ConfigError(f"smp decoders need levels at power-of-two strides, got {list(in_strides)}")
        self.in_strides = [int(s) for s in in_strides]
        self.all_strides = [2 ** i for i in range(depth + 1)]  # 1, 2, 4, ..., deepest
        given = dict(zip(self.in_strides, in_channels))
        channels = [given.get(s, 0) for s in self.all_strides]  # 0: a placeholder (the input, MiT's 1/2)
        channels[0] = 0
        self.decoder = self.make_decoder(channels, depth, **smp_kwargs)
        up = deepest if self.out_stride is None else self.out_stride
        self.head = SegmentationHead(out_channels, num_classes, kernel_size=self.head_kernel, upsampling=up)
        initialize_decoder(self.decoder)
        initialize_head(self.head)
        self.input_multiple = deepest  # the segmentor pads the image to a multiple of it
        self.min_input_size = self.min_deepest * deepest

    def make_decoder(self, channels: list[int], depth: int, **kwargs) -> nn.Module:
        raise NotImplementedError

    def smp_features(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Our levels placed at their strides, zero-channel placeholders elsewhere (sized from the finest level)."""
        ref, stride = features[0], self.in_strides[0]
        b, h, w = ref.shape[0], ref.shape[-2] * stride, ref.shape[-1] * stride
        by_stride = dict(zip(self.in_strides, features))
        return [by_stride[s] if s in by_stride else ref.new_zeros(b, 0, h // s, w // s) for s in self.all_strides]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if min(features[-1].shape[-2:]) < self.min_deepest:
            raise ConfigError(f"decoder {self.decoder_name!r} needs images of at least {self.min_input_size}x"
                              f"{self.min_input_size} on this encoder (its deepest level at least {self.min_deepest}"
                              f"x{self.min_deepest}), got a deepest level of {tuple(features[-1].shape[-2:])}")
        return self.head(self.decoder(self.smp_features(features)))


@register_decoder("unet")
class Unet(SmpHead):
    """U-Net (Ronneberger et al. 2015): top-down blocks, each upsampling x2 and concatenating the skip."""

    head_kernel, out_stride = 3, 1

    def __init__(self, in_channels, num_classes, *, in_strides, decoder_channels=(256, 128, 64, 32, 16),
                 use_norm="batchnorm", attention_type=None, interpolation_mode="nearest"):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=list(decoder_channels)[-1],
                         decoder_channels=list(decoder_channels), use_norm=use_norm, attention_type=attention_type,
                         interpolation_mode=interpolation_mode)

    def make_decoder(self, channels, depth, **kw):
        return smp_decoders.unet.decoder.UnetDecoder(channels, n_blocks=depth, **kw)


@register_decoder("unet_r34", encoder="resnet34")
class UnetR34(Unet):
    """The report's other model: smp's ``Unet("resnet34")`` (timm's ResNet34, the same weights' names)."""


@register_decoder("fpn", strides=PYRAMID)
class FPN(SmpHead):
    """FPN (Kirillov et al. 2019, panoptic FPN's semantic head): top-down pyramid, per-level conv towers, merged."""

    def __init__(self, in_channels, num_classes, *, in_strides, pyramid_channels=256, segmentation_channels=128,
                 dropout=0.2, merge_policy="add", interpolation_mode="nearest"):
        out = segmentation_channels * (4 if merge_policy == "cat" else 1)
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=out,
                         pyramid_channels=pyramid_channels, segmentation_channels=segmentation_channels,
                         dropout=dropout, merge_policy=merge_policy, interpolation_mode=interpolation_mode)

    def make_decoder(self, channels, depth, **kw):
        return smp_decoders.fpn.decoder.FPNDecoder(channels, encoder_depth=depth, **kw)


@register_decoder("pspnet")
class PSPNet(SmpHead):
    """PSPNet (Zhao et al. 2017): pyramid pooling (1, 2, 3, 6 bins) on the deepest level."""

    head_kernel, out_stride = 3, None

    def __init__(self, in_channels, num_classes, *, in_strides, out_channels=512, use_norm="batchnorm", dropout=0.2):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=out_channels,
                         psp_out_channels=out_channels, use_norm=use_norm, dropout=dropout)

    def make_decoder(self, channels, depth, *, psp_out_channels, **kw):
        return smp_decoders.pspnet.decoder.PSPDecoder(channels, out_channels=psp_out_channels, **kw)


@register_decoder("deeplabv3")
class DeepLabV3(SmpHead):
    """DeepLabV3 (Chen et al. 2017): ASPP on the deepest level (undilated encoders: 1/32)."""

    out_stride, min_train_batch = None, 2

    def __init__(self, in_channels, num_classes, *, in_strides, out_channels=256, atrous_rates=(12, 24, 36),
                 aspp_separable=False, aspp_dropout=0.5):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=out_channels,
                         aspp_out=out_channels, atrous_rates=tuple(atrous_rates), aspp_separable=aspp_separable,
                         aspp_dropout=aspp_dropout)

    def make_decoder(self, channels, depth, *, aspp_out, **kw):
        return smp_decoders.deeplabv3.decoder.DeepLabV3Decoder(channels[-1], aspp_out, **kw)


@register_decoder("deeplabv3plus", strides=PYRAMID)
class DeepLabV3Plus(SmpHead):
    """DeepLabV3+ (Chen et al. 2018): ASPP on the deepest level, upsampled to 1/4 and fused with the 1/4 level."""

    min_train_batch = 2

    def __init__(self, in_channels, num_classes, *, in_strides, out_channels=256, atrous_rates=(12, 24, 36),
                 aspp_separable=True, aspp_dropout=0.5):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=out_channels,
                         aspp_out=out_channels, atrous_rates=tuple(atrous_rates), aspp_separable=aspp_separable,
                         aspp_dropout=aspp_dropout)

    def make_decoder(self, channels, depth, *, aspp_out, **kw):
        dec = smp_decoders.deeplabv3.decoder.DeepLabV3PlusDecoder(channels, depth, aspp_out, output_stride=16, **kw)
        # smp's x4 (or x2) assumes a dilated encoder at 1/16 (1/8); ours is undilated: deepest -> 1/4
        dec.up = nn.Upsample(mode="bilinear", scale_factor=2 ** depth // 4, align_corners=True)
        return dec


@register_decoder("upernet", strides=PYRAMID)
class UPerNet(SmpHead):
    """UPerNet (Xiao et al. 2018): pyramid pooling on 1/32 + FPN over 1/4..1/16, fused at 1/4."""

    min_train_batch = 2

    def __init__(self, in_channels, num_classes, *, in_strides, decoder_channels=256, use_norm="batchnorm"):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=decoder_channels,
                         decoder_channels=decoder_channels, use_norm=use_norm)

    def make_decoder(self, channels, depth, **kw):
        return smp_decoders.upernet.decoder.UPerNetDecoder(channels, encoder_depth=depth, **kw)


@register_decoder("manet")
class MAnet(SmpHead):
    """MA-Net (Fan et al. 2020): U-Net with position-wise (PAB) and multi-scale fusion (MFAB) attention."""

    head_kernel, out_stride = 3, 1

    def __init__(self, in_channels, num_classes, *, in_strides, decoder_channels=(256, 128, 64, 32, 16),
                 reduction=16, use_norm="batchnorm", pab_channels=64, interpolation_mode="nearest"):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=list(decoder_channels)[-1],
                         decoder_channels=list(decoder_channels), reduction=reduction, use_norm=use_norm,
                         pab_channels=pab_channels, interpolation_mode=interpolation_mode)

    def make_decoder(self, channels, depth, **kw):
        return smp_decoders.manet.decoder.MAnetDecoder(channels, n_blocks=depth, **kw)


@register_decoder("pan", strides=PYRAMID)
class PAN(SmpHead):
    """PAN (Li et al. 2018): feature pyramid attention on the deepest level, global attention upsampling."""

    head_kernel, min_train_batch = 3, 2
    min_deepest = 8  # its feature pyramid attention halves the deepest level three times

    def __init__(self, in_channels, num_classes, *, in_strides, decoder_channels=32, interpolation_mode="bilinear"):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=decoder_channels,
                         decoder_channels=decoder_channels, interpolation_mode=interpolation_mode)

    def make_decoder(self, channels, depth, **kw):
        return smp_decoders.pan.decoder.PANDecoder(channels, encoder_depth=depth, **kw)


@register_decoder("segformer_smp", strides=PYRAMID)
class SegformerSmp(SmpHead):
    """smp's SegFormer head (MLP per level, concat, 1x1 fuse): a second implementation beside ``all_mlp``."""

    def __init__(self, in_channels, num_classes, *, in_strides, segmentation_channels=256):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=segmentation_channels,
                         segmentation_channels=segmentation_channels)

    def make_decoder(self, channels, depth, **kw):
        return smp_decoders.segformer.decoder.SegformerDecoder(channels, encoder_depth=depth, **kw)


@register_decoder("linknet")
class Linknet(SmpHead):
    """LinkNet (Chaurasia & Culurciello 2017): skips added, not concatenated."""

    out_stride = 1

    def __init__(self, in_channels, num_classes, *, in_strides, prefinal_channels=32, use_norm="batchnorm"):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=prefinal_channels,
                         prefinal_channels=prefinal_channels, use_norm=use_norm)

    def make_decoder(self, channels, depth, **kw):
        return smp_decoders.linknet.decoder.LinknetDecoder(channels, n_blocks=depth, **kw)


@register_decoder("unetplusplus")
class UnetPlusPlus(SmpHead):
    """U-Net++ (Zhou et al. 2018): nested, densely connected skips."""

    head_kernel, out_stride = 3, 1

    def __init__(self, in_channels, num_classes, *, in_strides, decoder_channels=(256, 128, 64, 32, 16),
                 use_norm="batchnorm", attention_type=None, interpolation_mode="nearest"):
        super().__init__(in_channels, num_classes, in_strides=in_strides, out_channels=list(decoder_channels)[-1],
                         decoder_channels=list(decoder_channels), use_norm=use_norm, attention_type=attention_type,
                         interpolation_mode=interpolation_mode)

    def make_decoder(self, channels, depth, **kw):
        return smp_decoders.unetplusplus.decoder.UnetPlusPlusDecoder(channels, n_blocks=depth, **kw)
