"""Which decoder heads are worth their cost on MiT-B0? SegFormer's all-MLP head against the classic heads.

The heads of the seed lectures, all from segmentation_models_pytorch on the same MiT-B0 encoder:
FPN (top-down pyramid), PSPNet (pyramid pooling), DeepLabV3+ (ASPP + a 1/4 skip), UPerNet (pyramid
pooling + FPN) and U-Net (skips at every level), each with its library defaults, the same tuning
budget (optimiser only) and the same seeds. There is no claim to test: the study measures accuracy,
cost (params, GFLOPs) and speed of each head beside the baseline.

    ablate run studies/decoder_zoo.py                    # tuned study on CamVid
    ablate run studies/decoder_zoo.py --preset smoke     # synthetic scenes, minutes on a CPU
    ablate run studies/decoder_zoo.py --preset cpu       # real CamVid at reduced cost
    ablate run studies/decoder_zoo.py --preset pilot     # 3 seeds of the cpu protocol, judged on val
"""

from optuna.distributions import CategoricalDistribution, FloatDistribution

from ablate.study import Study, Variant

HEADS = ("fpn", "pspnet", "deeplabv3plus", "upernet", "unet")

study = Study(
    name="decoder_zoo",
    data={"kind": "camvid"},
    eval_split="test",
    image_size=(256, 256),
    pretrained="nvidia/mit-b0",
    encoder="mit_b0",  # every head on the same encoder
    variants={"all_mlp": Variant("all_mlp"), **{head: Variant(head) for head in HEADS}},
    baseline="all_mlp",
    # batch 4: the pooling heads (deeplabv3plus, upernet) need at least 2 in training
    train={"batch_size": 4, "epochs": 15, "optimizer": "adam", "lr": 1e-4},
    # the same budget for every head: only the optimiser is tuned, each head keeps its library's widths
    search_space={
        "lr": FloatDistribution(3e-5, 1e-3, log=True),
        "weight_decay": CategoricalDistribution([0.0, 1e-4, 1e-2]),
    },
    trials=12,
    seeds=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    claims=[],
    latency={"rounds": 30, "warmup": 5, "dtype": "fp32"},
    presets={
        # Synthetic scenes, tiny images: every phase of six variants in minutes on 2 CPU cores.
        "smoke": {
            "data": {"kind": "synthetic", "n_train": 24, "n_val": 8, "n_test": 8, "size": (64, 80)},
            "image_size": (64, 64),
            "pretrained": None,
            "train": {"epochs": 2, "batch_size": 4, "eval_batch_size": 8, "amp": "off", "log_every": 4},
            "trials": 2,
            "seeds": [0, 1],
            "latency": {"rounds": 3, "launches": 2, "warmup": 1, "threads": 1},
            "threads": 1,
        },
        # Real CamVid at reduced cost: a CPU can finish it overnight.
        "cpu": {
            "image_size": (128, 160),
            "train": {"epochs": 6, "batch_size": 4},
            "trials": 0,
            "seeds": [0, 1, 2, 3, 4],
            "latency": {"rounds": 20},
        },
        # A pilot: 3 seeds of the cpu protocol, judged on val so the test split stays unseen.
        "pilot": {
            "image_size": (128, 160),
            "train": {"epochs": 6, "batch_size": 4},
            "trials": 0,
            "seeds": [0, 1, 2],
            "eval_split": "val",
            "latency": {"rounds": 10},
        },
    },
)
