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

``hf_reference_model`` is HF's ``SegformerForSemanticSegmentation`` returning logits at input
size, for the reference rows of ``ablate bench train`` and ``ablate bench latency``.
"""

from __future__ import annotations

import contextlib
import os
import types

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "autocast_context",
    "configure_threads",
    "fold_all_mlp_head",
    "folded_all_mlp_forward",
    "hf_reference_model",
    "is_foldable_all_mlp",
    "make_optimizer",
    "peak_rss_mb",
    "attention_in_fp32_on_cpu",
    "prepare_model_for_training",
    "reset_peak_rss",
    "train_step",
]


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


# ----------------------------------------------------------------------------- threads


def configure_threads(threads: int | str | None = None) -> int:
    """Set torch's intra-op threads; returns the count in use.

    ``None``: leave torch's default (the cores). An int: that many. ``"auto"``: the cores not busy
    with other processes by the 1-minute load average (at least 1), read once at start.

    Measured on the shared 2-core machine while ~3 other jobs ran (ablate step, folded head, bf16,
    batch 4, 256x256): 2 threads 1.7-3.5 s/step (OpenMP threads spin at barriers while a
    competing process holds the other core), 2 threads with ``OMP_WAIT_POLICY=PASSIVE`` in the
    environment ~0.78 s/step, 1 thread ~0.37 s/step. On an idle machine use the cores.
    Threads change only the order of some reductions, not what is learned.
    """
    if threads == "auto":
        cores = os.cpu_count() or 1
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
        threads = max(1, min(cores, int(cores - busy + 0.5)))
    if threads is not None and int(threads) > 0:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


# ----------------------------------------------------------------------------- all_mlp folding


def is_foldable_all_mlp(decoder: nn.Module) -> bool:
    """Whether ``decoder`` is the one-shot/parallel ladder cell (``all_mlp``) whose fuse can be folded."""
    return (
        getattr(decoder, "upsample", None) == "oneshot"
        and getattr(decoder, "fusion", None) == "parallel"
        and hasattr(decoder, "linear_c")
        and isinstance(getattr(decoder, "linear_fuse", None), nn.Conv2d)
        and decoder.linear_fuse.bias is None
        and tuple(decoder.linear_fuse.kernel_size) == (1, 1)
    )


def _folded_weights(linear_fuse: nn.Conv2d, projections) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per level ``(W_i @ P_i, W_i @ b_i)``; the fuse's input is HF's reversed concat (1/32 first)."""
    n = len(projections)
    out_ch = linear_fuse.weight.shape[0]
    embed = linear_fuse.weight.shape[1] // n
    fuse = linear_fuse.weight.reshape(out_ch, n, embed)
    folded = []
    # fold in the parameters' precision even under autocast: rounded to bf16 once, not twice
    kind = fuse.device.type if fuse.device.type in ("cpu", "cuda") else "cpu"  # meta: shape-only runs
    with torch.autocast(device_type=kind, enabled=False):
        for i, proj in enumerate(projections):
            w_i = fuse[:, n - 1 - i, :]
            lin = proj.proj
            folded.append((w_i @ lin.weight, w_i @ lin.bias))
    return folded


def folded_all_mlp_forward(decoder: nn.Module, features: list[torch.Tensor]) -> torch.Tensor:
    """``all_mlp``'s forward with ``linear_fuse`` folded into each level's projection.

    Equal to the plain forward (HF's ``SegformerDecodeHead``): a 1x1 conv without bias
    commutes with bilinear resizing, so ``fuse(cat(resize(proj_i(f_i))))`` is
    ``sum_i resize(fold_i(f_i))``. Works in the token (NHWC) layout, so no NCHW copies.
    """
    folded = _folded_weights(decoder.linear_fuse, decoder.linear_c)
    size = features[0].shape[-2:]
    total = None
    for f, (weight, bias) in zip(features, folded):
        y = F.linear(f.permute(0, 2, 3, 1), weight, bias).permute(0, 3, 1, 2)  # [B,E,h,w], channels_last
        if y.shape[-2:] != size:
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        total = y if total is None else total + y
    x = decoder.activation(decoder.batch_norm(total))
    return decoder.classifier(decoder.dropout(x))


def fold_all_mlp_head(decoder: nn.Module) -> bool:
    """Switch an ``all_mlp`` decoder instance to ``folded_all_mlp_forward``; False (untouched) otherwise.

    Measured (batch 4, 256x256, interleaved, CPU time at 1 thread): training step fp32 1155 -> 570
    ms (x2.0), bf16 + channels_last 688 -> 449 ms (x1.5); inference batch 1 at 360x480 bf16
    175 -> 104 ms. The head's share of the step drops from ~50 % to ~15 %.
    Parameters, state_dict names and checkpoints are unchanged; ``unfold_all_mlp_head`` undoes it.
    """
    if not is_foldable_all_mlp(decoder):
        return False
    decoder.forward = types.MethodType(folded_all_mlp_forward, decoder)
    return True


def unfold_all_mlp_head(decoder: nn.Module) -> None:
    """Back to the decoder's own (class) forward."""
    decoder.__dict__.pop("forward", None)


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

    * ``fold_head``: ``fold_all_mlp_head`` on an ``all_mlp`` decoder (no-op for other decoders).
    * ``fp32_attention``: ``attention_in_fp32_on_cpu`` (acts only under CPU autocast).
    * ``channels_last``: parameters of 4-D convs in channels_last (feed channels_last images too:
      ``BatchIterator(..., channels_last=True)``).
    """
    decoder = getattr(model, "decoder", None)
    if fold_head and decoder is not None:
        fold_all_mlp_head(decoder)
    if fp32_attention:
        attention_in_fp32_on_cpu(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


# ----------------------------------------------------------------------------- one training step


def train_step(model, optimizer, images, labels, *, device: str = "cpu", amp: str = "off", scheduler=None,
               scaler=None) -> torch.Tensor:
    """One optimisation step exactly as ``ablate.engine.train.fit`` does it; returns the detached loss.

    autocast forward -> fp32 cross-entropy over labelled pixels (``segmentation_loss``) ->
    zero_grad(set_to_none) -> backward -> step (through the GradScaler for fp16) -> scheduler.
    """
    from ablate.engine.train import segmentation_loss

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


# ----------------------------------------------------------------------------- reference model


class FP32Only(nn.Module):
    """Runs the wrapped model in fp32 even inside a bf16 autocast region (a reference row)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.model(x.float())


class ChannelsLastInput(nn.Module):
    """Feeds NHWC images to a model prepared with ``channels_last=True``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


class HFSegformerLogits(nn.Module):
    """HF ``SegformerForSemanticSegmentation`` as ``forward(x) -> logits [B,C,H,W]`` at input size.

    The upsampling is HF's own (bilinear, align_corners=False, as in its loss). ``.hf`` is the
    wrapped model, e.g. for ``model.hf(pixel_values=x, labels=y).loss``.
    """

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.hf(pixel_values=x).logits
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits


def hf_reference_model(num_classes: int = 11, *, seed: int = 0, attn: str = "sdpa") -> HFSegformerLogits:
    """Hugging Face's own SegFormer/MiT-B0 (random init, fp32, HF defaults) returning logits at input size.

    The reference of ``ablate bench train`` and the HF row of ``ablate bench latency``.
    ``SegformerConfig()`` is MiT-B0; ``semantic_loss_ignore_index`` is 255 (ablate's void).
    """
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(seed)
    config = SegformerConfig(num_labels=int(num_classes), semantic_loss_ignore_index=255)
    config._attn_implementation = attn
    model = SegformerForSemanticSegmentation(config)
    return HFSegformerLogits(model).train()


# ----------------------------------------------------------------------------- memory


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set (VmHWM) to the current RSS (Linux; False elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """This process's peak resident set since the last reset, MiB (``VmHWM``); None off Linux.

    DataLoader worker processes are not included.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    if os.name == "posix":
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return None
