"""The MiT decoder ladder: SegFormer's all-MLP head with two switches.

``upsample``: ``"oneshot"`` (each map jumps to 1/4 in one bilinear resize; classify at
1/4 and the segmentor does one x4 jump) or ``"progressive"`` (every jump is a chain of
x2 bilinear steps, each followed by a depthwise-separable ``Refine``; after fusion the
channels are reduced to ``head_channels`` and two more x2 steps reach the input size,
where we classify).

``fusion``: ``"parallel"`` (every level projected to ``embed_dim``, brought to 1/4,
concatenated in HF's reversed order, 1x1 fuse + BN + ReLU) or ``"skip"`` (top-down,
1/32 -> 1/16 -> 1/8 -> 1/4: bring the running map to the next level's size, concat with
that level's projection, 3x3 conv + BN + ReLU to ``skip_channels``).

The four registered cells are subclasses that fix the switches, so each rung of the
ladder changes exactly one thing and shares every other module (and its name) with
the baseline. Module names of the baseline are HF's (``linear_c.{i}.proj``,
``linear_fuse``, ``batch_norm``, ``classifier``) so a decode-head state dict loads as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ablate.errors import ConfigError

from .blocks import ConvBNReLU, MLPProjection, Refine, conv_relu_init, double, hf_init, resize

UPSAMPLE = ("oneshot", "progressive")
FUSION = ("parallel", "skip")


class LadderDecoder(nn.Module):
    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        *,
        upsample: str = "oneshot",
        fusion: str = "parallel",
        embed_dim: int = 256,
        skip_channels: int = 64,
        head_channels: int = 64,
        dropout: float = 0.1,
    ):
        super().__init__()
        if upsample not in UPSAMPLE or fusion not in FUSION:
            raise ConfigError(f"upsample must be one of {UPSAMPLE} and fusion one of {FUSION}")
        if len(in_channels) != 4:
            raise ConfigError(f"the MiT decoders need 4 feature levels, got {len(in_channels)}")
        self.upsample, self.fusion = upsample, fusion
        progressive = upsample == "progressive"
        levels = len(in_channels)

        self.linear_c = nn.ModuleList(MLPProjection(c, embed_dim) for c in in_channels)
        if fusion == "parallel":
            if progressive:
                # level i (stride 4 * 2**i) needs i x2 steps to reach 1/4, each refined
                self.up_chains = nn.ModuleList(
                    nn.ModuleList(Refine(embed_dim) for _ in range(i)) for i in range(levels)
                )
            self.linear_fuse = nn.Conv2d(embed_dim * levels, embed_dim, 1, bias=False)
            self.batch_norm = nn.BatchNorm2d(embed_dim)
            self.activation = nn.ReLU()
            fused = embed_dim
        else:
            # steps run for levels 2, 1, 0; the first one starts from the 1/32 projection
            widths = [embed_dim] + [skip_channels] * (levels - 2)
            if progressive:
                self.skip_refine = nn.ModuleList(Refine(w) for w in widths)
            self.skip_fuse = nn.ModuleList(ConvBNReLU(w + embed_dim, skip_channels, 3) for w in widths)
            fused = skip_channels

        if progressive:
            self.reduce = ConvBNReLU(fused, head_channels, 1)
            self.head_refine = nn.ModuleList(Refine(head_channels) for _ in range(2))
            fused = head_channels
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(fused, num_classes, 1)
        hf_init(self)
        conv_relu_init(self)  # only the new blocks (Refine, ConvBNReLU): all_mlp stays exactly HF's

    def _fuse_parallel(self, feats: list[torch.Tensor]) -> torch.Tensor:
        sizes = [f.shape[-2:] for f in feats]
        outs = []
        for i, x in enumerate(feats):
            if self.upsample == "oneshot":
                x = resize(x, sizes[0])
            else:
                for j, refine in zip(range(i - 1, -1, -1), self.up_chains[i]):
                    x = refine(resize(x, sizes[j]))
            outs.append(x)
        x = self.linear_fuse(torch.cat(outs[::-1], dim=1))  # HF's order: 1/32 first
        return self.activation(self.batch_norm(x))

    def _fuse_skip(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for step, i in enumerate(range(len(feats) - 2, -1, -1)):
            x = resize(x, feats[i].shape[-2:])
            if self.upsample == "progressive":
                x = self.skip_refine[step](x)
            x = self.skip_fuse[step](torch.cat([x, feats[i]], dim=1))
        return x

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        feats = [proj(f) for proj, f in zip(self.linear_c, features)]
        x = self._fuse_parallel(feats) if self.fusion == "parallel" else self._fuse_skip(feats)
        if self.upsample == "progressive":
            x = self.reduce(x)
            for refine in self.head_refine:  # 1/4 -> 1/2 -> 1/1
                x = refine(double(x))
        return self.classifier(self.dropout(x))
