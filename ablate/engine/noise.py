"""Dropout and drop-path that draw from a run's own generator, so that packed seeds can replay them.

A training run's stochastic layers (the decoders' dropout, MiT's drop-path) draw their uniform
noise from ONE ``NoiseSource`` per run, seeded from the run's seed, instead of torch's global
generator. Seed packing (``ablate.engine.packed``) trains K runs in one vmapped computation:
there each run's noise is drawn from its own source outside vmap, in the order the layers ask
for it, and replayed inside, so a packed seed sees exactly the draws it sees when trained alone.

The masks are the usual ones: dropout keeps an element when ``u >= p`` and scales by
``1 / (1 - p)``; drop-path keeps a sample when ``floor(u + keep) == 1`` and divides by ``keep``
(HF's ``SegformerDropPath``). Noise for a 4-D input is drawn in NHWC order, the memory order of
channels_last activations, and viewed as NCHW, so the draw does not depend on the layout.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode as _DispatchMode

NOISE_STREAM = 0x6E6F697365  # "noise": the run's noise stream is independent of its init and data streams


def noise_generator(seed: int, device="cpu") -> torch.Generator:
    state = int(np.random.SeedSequence([int(seed), NOISE_STREAM]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator(device=torch.device(device)).manual_seed(state)


def draw_uniform(shape, generator: torch.Generator, device) -> torch.Tensor:
    """U[0, 1) float32 of ``shape``; 4-D shapes are drawn as NHWC and viewed as NCHW."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4:
        b, c, h, w = shape
        return torch.rand((b, h, w, c), generator=generator, device=device).permute(0, 3, 1, 2)
    return torch.rand(shape, generator=generator, device=device)


class NoiseSource:
    """Where a model's stochastic layers get their uniform noise.

    Normal use: draw from ``generator``. ``recording()``: note each requested shape (no draw).
    ``replaying(tensors)``: hand out the given tensors in order (packed training, inside vmap).
    """

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator
        self._record: list | None = None
        self._replay = None

    def __deepcopy__(self, memo):  # a copied model gets a source of its own, not a clone of this stream
        return NoiseSource(None)

    def uniform(self, shape, device) -> torch.Tensor:
        if self._replay is not None:
            try:
                return next(self._replay)
            except StopIteration:
                raise RuntimeError("packed noise ran out: the model asked for more draws than were recorded") from None
        if self._record is not None:
            self._record.append(tuple(int(s) for s in shape))
            return torch.full(tuple(shape), 0.5, device=device)
        if self.generator is None:
            raise RuntimeError("this model's noise source has no generator: call seed_stochastic_layers first")
        return draw_uniform(shape, self.generator, device)

    @contextlib.contextmanager
    def recording(self):
        self._record = []
        try:
            yield self._record
        finally:
            self._record = None

    @contextlib.contextmanager
    def replaying(self, tensors):
        self._replay = iter(tensors)
        try:
            yield
        finally:
            self._replay = None


class SeededDropout(nn.Module):
    """``nn.Dropout`` (element-wise) or ``nn.Dropout2d`` (channel-wise) drawing from a NoiseSource."""

    def __init__(self, p: float, noise: NoiseSource, *, channelwise: bool = False):
        super().__init__()
        self.p, self.channelwise = float(p), channelwise
        self.noise = noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = (*x.shape[:2], *([1] * (x.dim() - 2))) if self.channelwise else x.shape
        keep = (self.noise.uniform(shape, x.device) >= self.p).to(x.dtype)
        return x * (keep * (1.0 / (1.0 - self.p)))

    def after_relu(self, x: torch.Tensor) -> torch.Tensor:
        """``self(relu(x))`` as ONE mask multiply, for the all_mlp head's BN -> ReLU -> dropout tail.

        Same draws, same values (a dropped or negative element is 0, possibly -0.0): the mask is
        ``(x > 0) & (u >= p)`` times ``1 / (1 - p)``, so the backward is one multiply instead of
        ReLU's threshold pass plus dropout's multiply over the [B, 256, H/4, W/4] map (~3 % of a
        CPU step, fp32, batch 4, 256x256).
        """
        if not self.training or self.p == 0.0 or self.channelwise:
            return self(torch.relu(x))
        u = self.noise.uniform(x.shape, x.device)
        keep = (x > 0) & (u >= self.p)
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))  # (torch.where with scalars: 4x slower here)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", channelwise" if self.channelwise else "")


class SeededDropPath(nn.Module):
    """Stochastic depth per sample (HF's ``SegformerDropPath``) drawing from a NoiseSource."""

    def __init__(self, drop_prob: float, noise: NoiseSource):
        super().__init__()
        self.drop_prob = float(drop_prob)
        self.noise = noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = torch.floor(self.noise.uniform(shape, x.device) + keep).to(x.dtype)
        # HF's x.div(keep) * mask in one pass over x (and one in the backward): a kept sample is
        # divided by exactly ``keep`` as there, a dropped one by inf, giving the same 0
        return x / (keep / mask)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


def seed_stochastic_layers(model: nn.Module, noise: NoiseSource) -> int:
    """Swap the model's dropout / drop-path layers for seeded ones drawing from ``noise``; returns how many.

    Layers already swapped are re-pointed at ``noise``. Dropout with p = 0 is left alone (it draws nothing).
    """
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = None
            if isinstance(child, (SeededDropout, SeededDropPath)):
                child.noise = noise
                count += 1
            elif isinstance(child, (nn.Dropout, nn.Dropout2d)) and type(child) in (nn.Dropout, nn.Dropout2d):
                if child.p > 0:
                    new = SeededDropout(child.p, noise, channelwise=isinstance(child, nn.Dropout2d))
            elif type(child).__name__ == "SegformerDropPath":
                new = SeededDropPath(child.drop_prob, noise)
            if new is not None:
                new.train(child.training)
                setattr(parent, name, new)
                count += 1
    return count


class _RandomOps(_DispatchMode):
    """Notes every random aten op (tag ``nondeterministic_seeded``) run under it."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if torch.Tag.nondeterministic_seeded in func.tags:
            self.seen.append(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


def unseeded_random_ops(model: torch.nn.Module, image_size=(64, 64), batch: int = 2) -> list[str]:
    """Names of random ops a training forward of ``model`` (on the meta device) draws from torch's global
    generator after ``seed_stochastic_layers`` swapped its dropout / drop-path modules: e.g. ``native_dropout``
    from a decoder calling ``F.dropout`` itself. Empty when every draw is seeded (packable)."""
    import copy

    model = copy.deepcopy(model).train()
    noise = NoiseSource(None)
    seed_stochastic_layers(model, noise)
    h, w = (int(v) for v in image_size)
    device = next(model.parameters()).device
    with noise.recording(), _RandomOps() as spy:
        model(torch.empty(batch, 3, h, w, device=device))
    return sorted(set(spy.seen))
