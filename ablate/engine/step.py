"""Training speed-ups that do not change what is learned, and the Hugging Face reference model.

Measured on the project CPU (AMD EPYC, 2 cores, AVX-512 + AVX512-BF16, no AMX; torch 2.14.1,
transformers 5.23), MiT-B0 + all_mlp, batch 4, 256x256, one step = forward + loss + backward +
Adam. The machine was shared with other jobs, so every A/B below is interleaved in one process
(rounds of 2 steps per variant, medians over 3-5 rounds) and read from process CPU time at
1 thread (steady under load), with wall time as a check.

Where HF's own step spends its time (torch.profiler, fp32, 2 threads, ~570 ms/step): the decode
head's ``linear_fuse`` (1x1 conv 1024 -> 256 at 1/4 resolution: 8.6 of the 13.6 forward GFLOPs
of a batch) forward 42 + backward 105 ms, its NCHW<->token copies ~75 ms, the 1024-channel concat
17 ms, upsample backward of the four 256-channel maps 26 ms, BN 13 ms, the dropout mask
(``bernoulli_`` on [4,256,64,64]) 28 ms: about half the step is the head. The encoder (Linear
matmuls, Mix-FFN depthwise 3x3 convs, SDPA attention, layer norms, GELU) is the other half.

A/B, per training step (ablate's step, CPU ms at 1 thread, medians; x = speed-up):
* ``fold_all_mlp_head``: fp32 1155 -> 570 ms (x2.0); with bf16 + channels_last 688 -> 449 ms
  (x1.5). ``linear_fuse`` is a per-pixel linear map and bilinear resizing a per-channel one whose
  weights sum to one, so they commute: ``W @ cat(up(P_i f_i + b_i)) == sum_i up((W_i P_i) f_i +
  W_i b_i)``. Same parameters, same function (max abs diff 2e-16 in float64), same gradients.
* bf16 autocast (``autocast_context``), folded head: 570 -> 435 ms (x1.31).
* ``attention_in_fp32_on_cpu`` under bf16: x1.05 (min 1.02 over 5 rounds); bf16 flash attention
  is slower than fp32 for MiT's shapes on this CPU.
* channels_last: training within noise (x1.04); inference batch 1 at 360x480 with the folded head
  and bf16: 104 -> 83 ms (x1.26).
* fused Adam (``make_optimizer``): within noise; the optimizer is ~1-2 % of a step.
* tried, not adopted: logits upsampled in fp32 contiguous before the loss (~2-3 %, lives in
  ``Segmentor.forward``: a suggestion for the models owner), eager attention (noise), dropout in
  another dtype / RNG (the mask draw is RNG-bound: ~9 % of the step, left as is: it is what is
  learned), ``torch.compile`` (slower, per the issue).
* threads (``configure_threads``): on the loaded machine 1 thread was 2-9x faster than 2.

What is left in our step (bf16, folded, 1 thread, ~420 ms): Linear matmuls ~20 %, attention
fwd+bwd ~15 % (before the fp32 switch), dropout mask 9 %, conv backward (patch embeddings,
depthwise) 8 %, logits upsample + cross-entropy at full size ~14 %, layer norm / GELU / adds rest.

This module is the ONE training step: loss (``segmentation_loss``), optimiser (``make_optimizer``,
``make_scheduler``), precision (``autocast_context``), model preparation and ``train_step``;
``fit`` and ``ablate bench train`` both call it. The folded head lives with its decoder
(``ablate.models.decoders.all_mlp``), threads in ``ablate.engine.environment``, the Hugging Face
reference in ``ablate.bench.reference``.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ablate.engine.metrics import IGNORE_INDEX

__all__ = [
    "autocast_context",
    "make_optimizer",
    "make_scheduler",
    "attention_in_fp32_on_cpu",
    "prepare_model_for_training",
    "segmentation_loss",
    "train_step",
]


# ----------------------------------------------------------------------------- loss


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over labelled pixels.

    Equals ``F.cross_entropy(..., ignore_index=255)`` except that a batch with no
    labelled pixel gives 0 instead of NaN (0/0), so it is not mistaken for divergence.
    """
    labelled = (labels != IGNORE_INDEX).sum().clamp(min=1)
    summed = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return summed / labelled


# ----------------------------------------------------------------------------- precision


def autocast_context(device: str, amp: str):
    """Autocast for a resolved precision ('bf16', 'fp16' or 'off'); a null context for 'off'.

    bf16 on this CPU (AVX512-BF16, no AMX): ~1.3x per training step (CPU time, 1 thread, HF
    MiT-B0 step 491 -> 385 ms with the folded head). Matmuls/convs/SDPA run in bf16, the loss
    (cross-entropy) stays fp32 under CPU autocast, parameters and optimizer state stay fp32.
    """
    if amp in (None, "off", "fp32"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=str(device).split(":")[0], dtype=dtype)


# ----------------------------------------------------------------------------- optimizer


def make_optimizer(params, *, lr: float, weight_decay: float = 0.0, kind: str = "adam") -> torch.optim.Optimizer:
    """Adam/AdamW with the fused kernel where the build supports it (CPU included), else foreach.

    Same update rule as the default implementation (identical parameters after a step within
    1e-6, see tests/test_speed.py). One pass over all parameters instead of ~10 small ops per
    tensor; for MiT-B0 + all_mlp (3.7 M params) it is 1-2 % of a step, so the gain is small.
    """
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    params = [p for p in params if p.requires_grad]
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, lr=lr, weight_decay=weight_decay, foreach=True)


def make_scheduler(optimizer: torch.optim.Optimizer, *, total_steps: int, power: float):
    """Polynomial decay per step over the whole run (power 0: constant LR, the report's plain Adam)."""
    return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=max(1, total_steps), power=power)


# ----------------------------------------------------------------------------- MiT attention in fp32 on CPU

FP32_ATTENTION = "ablate_sdpa_fp32_cpu"


def _sdpa_fp32_cpu(module, query, key, value, attention_mask, **kwargs):
    """HF's SDPA attention, but in fp32 when CPU autocast is on (q/k/v cast up, output fp32)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    device = query.device.type
    if device == "cpu" and torch.is_autocast_enabled(device):
        with torch.autocast(device_type=device, enabled=False):
            return sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask,
                                          **kwargs)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def attention_in_fp32_on_cpu(model: nn.Module) -> bool:
    """Route MiT's attention through ``_sdpa_fp32_cpu``; False when the model has no HF Segformer encoder.

    On this CPU, PyTorch's flash-attention kernel for MiT's shapes (4096 queries over 64 reduced
    keys, head dim 32) is ~1.8x slower in bf16 than in fp32 (fwd+bwd of the four stages: 29 vs
    16 ms, 1 thread). Running attention in fp32 inside bf16 autocast: ~5 % per step (median
    of 5 interleaved rounds, min 1.02x), and it is more precise, not less. Other devices and
    fp32 runs are untouched.
    """
    found = False
    for module in model.modules():
        config = getattr(module, "config", None)
        if type(module).__name__ == "SegformerModel" and config is not None:
            from transformers import AttentionInterface

            AttentionInterface.register(FP32_ATTENTION, _sdpa_fp32_cpu)
            if config._attn_implementation in (None, "sdpa"):
                config._attn_implementation = FP32_ATTENTION
                found = True
    return found


def prepare_model_for_training(model: nn.Module, *, channels_last: bool = True, fold_head: bool = True,
                               fp32_attention: bool = True) -> nn.Module:
    """Apply the math-preserving speed-ups to a ``Segmentor`` in place; returns it.

    * ``fold_head``: the decoder's own ``fold_head()`` where it has one (``all_mlp``: the folded
      1x1 fuse); a no-op for other decoders.
    * ``fp32_attention``: ``attention_in_fp32_on_cpu`` (acts only under CPU autocast).
    * ``channels_last``: parameters of 4-D convs in channels_last (feed channels_last images too:
      ``BatchIterator(..., channels_last=True)``).
    """
    fold = getattr(getattr(model, "decoder", None), "fold_head", None)
    if fold_head and callable(fold):
        fold()
    if fp32_attention:
        attention_in_fp32_on_cpu(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


# ----------------------------------------------------------------------------- one training step


def train_step(model, optimizer, images, labels, *, device: str = "cpu", amp: str = "off", scheduler=None,
               scaler=None) -> torch.Tensor:
    """One optimisation step, as ``ablate.engine.train.fit`` and ``ablate bench train`` run it; returns the detached loss.

    autocast forward -> fp32 cross-entropy over labelled pixels (``segmentation_loss``) ->
    zero_grad(set_to_none) -> backward -> step (through the GradScaler for fp16) -> scheduler.
    """
    with autocast_context(device, amp):
        logits = model(images)
    loss = segmentation_loss(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    if scheduler is not None:
        scheduler.step()
    return loss.detach()
