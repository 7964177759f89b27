"""A researcher's own decoder against SegFormer's all-MLP head: the recipe for a new head.

The decoder is defined right here and registered by name; every process that builds models for
this study (``--workers N``, the latency launches, ``ablate train --study``, ``ablate bench``) runs
this file first, and a module beside it (``import my_heads``) imports as well.

    ablate run studies/custom_decoder.py --preset smoke     # synthetic scenes, minutes on a CPU
    ablate train --study studies/custom_decoder.py --decoder fpn_lite --pretrained none --epochs 1
"""

import torch.nn.functional as F
from torch import nn

from ablate.models import register_decoder
from ablate.study import Claim, Study, Variant


@register_decoder("fpn_lite")  # encoder: the study's (MiT-B0 here)
class FPNLite(nn.Module):
    """A small FPN: 1x1 laterals to ``width``, top-down sum with bilinear upsampling, 3x3 smooth, classify at 1/4."""

    def __init__(self, in_channels, num_classes, *, width: int = 64):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.smooth = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                    nn.ReLU())
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, features):
        x = self.lateral[-1](features[-1])
        for lateral, feature in zip(self.lateral[-2::-1], features[-2::-1]):  # 1/16, 1/8, 1/4
            x = lateral(feature) + F.interpolate(x, size=feature.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.smooth(x))


study = Study(
    name="custom_decoder",
    data={"kind": "camvid"},
    image_size=(256, 256),
    pretrained="nvidia/mit-b0",
    variants={"all_mlp": Variant("all_mlp"), "fpn_lite": Variant("fpn_lite", settings={"width": 64})},
    baseline="all_mlp",
    train={"batch_size": 4, "epochs": 15, "optimizer": "adam", "lr": 1e-4},
    seeds=[0, 1, 2, 3, 4],
    claims=[Claim("fpn_lite", "miou", band=(-0.01, 0.01), relative=False)],  # as accurate, within one point
    presets={
        "smoke": {
            "data": {"kind": "synthetic", "n_train": 24, "n_val": 8, "n_test": 8, "size": (64, 80)},
            "image_size": (64, 64),
            "pretrained": None,
            "train": {"epochs": 2, "batch_size": 4, "eval_batch_size": 8, "amp": "off", "log_every": 4},
            "seeds": [0, 1],
            "latency": {"rounds": 3, "launches": 2, "warmup": 1, "threads": 1},
            "threads": 1,
        },
    },
)
