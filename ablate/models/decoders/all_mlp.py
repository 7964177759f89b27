"""``all_mlp``: SegFormer's all-MLP decode head, the baseline of the ladder.

upsampling: one-shot bilinear to 1/4; the segmentor does one x4 jump to the input size.
fusion:     parallel: per-level linear -> ``embed_dim``, concat (1/32 first, as HF),
            1x1 fuse (no bias) + BN + ReLU, dropout, 1x1 classifier at 1/4.

Numerically identical to HF's ``SegformerDecodeHead`` given the same weights; the
parameter names are HF's (``linear_c.{i}.proj``, ``linear_fuse``, ``batch_norm``,
``classifier``), so a checkpoint's decode head loads directly (see ``load_hf_decode_head``).

Settings:
    embed_dim (256)  width of the per-level projections and of the fused map
                     (HF's ``decoder_hidden_size``; 256 for MiT-B0/B1)
    dropout (0.1)    dropout before the classifier (HF's ``classifier_dropout_prob``)
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ablate.errors import ConfigError

from .ladder import LadderDecoder
from .registry import register_decoder


@register_decoder("all_mlp", strides=(4, 8, 16, 32))
class AllMLPDecoder(LadderDecoder):
    def __init__(
        self, in_channels: Sequence[int], num_classes: int, *, embed_dim: int = 256, dropout: float = 0.1
    ):
        super().__init__(
            in_channels,
            num_classes,
            upsample="oneshot",
            fusion="parallel",
            embed_dim=embed_dim,
            dropout=dropout,
        )

    def load_pretrained_head(self, state_dict: Mapping[str, torch.Tensor]) -> bool:
        """Load a checkpoint's HF decode head when it fits exactly; False (untouched) otherwise."""
        if not head_fits(self, state_dict):
            return False
        load_hf_decode_head(self, state_dict)
        return True

    def fold_head(self) -> bool:
        """Switch this instance to the folded forward (same function, ~2x faster step); see below."""
        return fold_all_mlp_head(self)


# transformers >= 5 renames ``linear_c`` to ``linear_projections`` in memory; checkpoints keep ``linear_c``.
_HF_RENAMES = (("linear_projections.", "linear_c."),)


def hf_head_to_all_mlp(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``SegformerDecodeHead`` state dict (either HF naming) with our ``all_mlp`` names."""
    out = {}
    for key, value in state_dict.items():
        for old, new in _HF_RENAMES:
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    return out


def load_hf_decode_head(decoder: AllMLPDecoder, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load HF decode-head weights into ``decoder``; ConfigError when shapes or names disagree."""
    theirs = hf_head_to_all_mlp(state_dict)
    ours = decoder.state_dict()
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    bad_shape = sorted(k for k in set(ours) & set(theirs) if ours[k].shape != theirs[k].shape)
    if missing or unexpected or bad_shape:
        raise ConfigError(
            "the checkpoint's decode head does not fit all_mlp "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, shape mismatch {bad_shape[:3]}): "
            "use matching num_classes/embed_dim, or load only the encoder"
        )
    decoder.load_state_dict(theirs)


def head_fits(decoder: AllMLPDecoder, state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether an HF decode head has exactly ``decoder``'s names and shapes (e.g. same num_classes)."""
    theirs = hf_head_to_all_mlp(state_dict)
    ours = decoder.state_dict()
    return set(ours) == set(theirs) and all(ours[k].shape == theirs[k].shape for k in ours)


# ----------------------------------------------------------------------------- the folded head (speed-up)


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
    # coarsest level first: the sum starts as a resized map (a tensor of its own, not a view), so
    # the other levels add into it in place: two fewer [B,E,H/4,W/4] maps per step
    for f, (weight, bias) in reversed(list(zip(features, folded))):
        y = F.linear(f.permute(0, 2, 3, 1), weight, bias).permute(0, 3, 1, 2)  # [B,E,h,w], channels_last
        if y.shape[-2:] != size:
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        if total is None:
            total = y
        elif total._base is None:
            total.add_(y)
        else:  # in place on a view would make autograd copy the whole base back in the backward
            total = total + y
    x = decoder.batch_norm(total)
    after_relu = getattr(decoder.dropout, "after_relu", None)  # seeded dropout: ReLU + dropout as one mask
    if callable(after_relu) and isinstance(decoder.activation, nn.ReLU):
        return decoder.classifier(after_relu(x))
    return decoder.classifier(decoder.dropout(decoder.activation(x)))


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
