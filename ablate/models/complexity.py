"""Model size and compute: parameters (M) and forward GFLOPs per image."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def count_params(model: nn.Module) -> float:
    """All parameters (trainable or not), in millions."""
    return sum(p.numel() for p in model.parameters()) / 1e6


def count_gflops(model: nn.Module, image_size=(256, 256)) -> float:
    """Forward GFLOPs for one ``image_size`` (H, W) image, counted by ``torch.utils.flop_counter``.

    FlopCounterMode counts 2 FLOPs per multiply-add of matmuls, convolutions and attention
    (so values are twice the "GFLOPs" of papers that count MACs, e.g. mmseg/SegFormer), and
    ignores elementwise ops, norms and interpolation. Attention runs on the math backend
    while counting so that it is counted on every device. Counted in eval mode without grad; the
    model's train/eval state of every submodule is restored afterwards.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    h, w = image_size
    modes = {m: m.training for m in model.modules()}
    param = next(model.parameters())
    x = torch.zeros(1, 3, int(h), int(w), device=param.device, dtype=param.dtype)
    try:
        model.eval()
        # The math attention backend decomposes into counted matmuls; the fused CPU kernel
        # is invisible to FlopCounterMode and would drop MiT's attention from the count.
        with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for m, training in modes.items():
            m.training = training
    return counter.get_total_flops() / 1e9


def complexity_table(image_sizes: Iterable = ((256, 256), (360, 480)), *, num_classes: int,
                     pairs: Iterable | None = None) -> list[dict]:
    """One row per (decoder, encoder) (default settings, random init): params_m, decoder_params_m and
    gflops_<H>x<W>, with the dataset's ``num_classes`` (the classifier's size and FLOPs grow with it).
    ``pairs``: (decoder, encoder) tuples; default: every registered decoder on its default encoder."""
    from .decoders import decoder_encoder, list_decoders
    from .segmentor import build_model

    sizes = [tuple(int(v) for v in s) for s in image_sizes]
    pairs = list(pairs) if pairs is not None else [(name, decoder_encoder(name)) for name in list_decoders()]
    rows = []
    for name, encoder in pairs:
        model = build_model(name, num_classes=num_classes, encoder=encoder, pretrained=None, seed=0)
        row = {
            "decoder": name,
            "encoder": encoder,
            "params_m": round(count_params(model), 3),
            "decoder_params_m": round(count_params(model.decoder), 3),
        }
        for h, w in sizes:
            row[f"gflops_{h}x{w}"] = round(count_gflops(model, (h, w)), 3)
        rows.append(row)
    return rows
