"""Seeded mini-batches with augmentation done on whole uint8 batches (no decoding per epoch)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ablate.data.classes import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from ablate.data.dataset import SegData


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # SeedSequence mixes (seed, epoch) so nearby pairs give unrelated streams.
    state = int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(state)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float32 ImageNet-normalised, as one multiply-add."""
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    return torch.addcmul(-mean / std, images.float(), 1.0 / (255.0 * std))


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    *,
    scale_range=(0.75, 1.5),
    flip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal flip + random scale, cropped (or padded) back to the same size.

    images: normalised float [B,3,H,W]; labels: uint8/int [B,H,W]. One axis-aligned sampling grid
    per sample does flip, scale and crop together: bilinear for images (padding 0 = the mean colour),
    nearest for labels (padding = IGNORE_INDEX). The random draws come from `generator` on the CPU, so results do not
    depend on the device.
    """
    params = draw_augment_params(images.shape[0], generator, scale_range=scale_range, flip=flip)
    return apply_augment(images, labels, *(p.to(images.device) for p in params))


def draw_augment_params(batch: int, generator: torch.Generator, *, scale_range=(0.75, 1.5), flip: bool = True):
    """(scale float64 [B], sign float32 [B], shift float64 [B,2]) for ``apply_augment``, drawn on the CPU."""
    low, high = scale_range
    scale = low + (high - low) * torch.rand(batch, generator=generator, dtype=torch.float64)
    sign = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0) if flip else torch.ones(batch)
    # The window's centre may move as far as the scaled image still covers (or stays inside) the output.
    reach = (1.0 - 1.0 / scale).abs()
    shift = (torch.rand(batch, 2, generator=generator, dtype=torch.float64) * 2 - 1) * reach[:, None]
    return scale, sign, shift


def apply_augment(images: torch.Tensor, labels: torch.Tensor, scale, sign, shift):
    """Resample a batch by the drawn parameters (on the images' device; no host round trip)."""
    grid = _axis_aligned_grid(sign / scale, 1.0 / scale, shift, images.shape[-2:], images.device)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Shift labels by one so zero padding lands on 0 and becomes IGNORE_INDEX afterwards.
    shifted = (labels.to(torch.float32) + 1.0).unsqueeze(1)
    sampled = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    sampled = sampled.squeeze(1).to(torch.int64) - 1
    return images, sampled.masked_fill_(sampled < 0, IGNORE_INDEX)


def _axis_aligned_grid(scale_x, scale_y, shift, size, device) -> torch.Tensor:
    """Sampling grid [B,H,W,2] of x_in = scale * x_out + shift (normalised coordinates).

    Same as F.affine_grid(align_corners=False) for a diagonal theta, built by broadcasting because
    affine_grid's general matrix product is ~10x slower on the training hot path.
    """
    height, width = size
    device = scale_x.device  # built where the parameters are (float64 arithmetic is exact-rounded everywhere)
    xs = (torch.arange(width, dtype=torch.float64, device=device) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=torch.float64, device=device) * 2 + 1) / height - 1
    gx = (scale_x[:, None] * xs + shift[:, 0:1]).float()
    gy = (scale_y[:, None] * ys + shift[:, 1:2]).float()
    batch = gx.shape[0]
    return torch.stack(
        (gx[:, None, :].expand(batch, height, width), gy[:, :, None].expand(batch, height, width)), -1
    )


class BatchIterator:
    """Batches of (float32 normalised images [B,3,H,W], int64 labels [B,H,W]) on `device`.

    Order and augmentation are a function of (seed, epoch) only: call set_epoch before each epoch.
    On an accelerator the uint8 split is copied to the device once, the epoch's order and random
    draws once per epoch, and normalisation and augmentation run there: no host sync per step.
    """

    def __init__(
        self,
        data: SegData,
        batch_size: int,
        *,
        shuffle: bool,
        augment: bool,
        seed: int,
        drop_last: bool = False,
        scale_range=(0.75, 1.5),
        device="cpu",
        channels_last: bool = False,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.data, self.batch_size = data, int(batch_size)
        self.shuffle, self.augment, self.seed = shuffle, augment, int(seed)
        self.drop_last, self.scale_range = drop_last, tuple(scale_range)
        self.device, self.channels_last = torch.device(device), channels_last
        self.epoch = 0
        self._on_device = None  # (images, labels) copied once to an accelerator

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _tensors(self):
        if self.device.type == "cpu":
            return self.data.images, self.data.labels
        if self._on_device is None:  # uint8 split is small (train at 256x256: ~96 MB); copy it once
            self._on_device = (self.data.images.to(self.device), self.data.labels.to(self.device))
        return self._on_device

    def epoch_plan(self):
        """The epoch's order and augmentation draws, made on the CPU up front from (seed, epoch).

        -> (order [N], [(start, stop)] per batch, params or None): params are the concatenated
        (scale, sign, shift) of every batch, drawn in the same order as one batch at a time.
        """
        generator = epoch_generator(self.seed, self.epoch)
        n = len(self.data)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        spans = [(start, min(start + self.batch_size, n)) for start in range(0, len(self) * self.batch_size,
                                                                              self.batch_size)]
        params = None
        if self.augment and spans:
            draws = [draw_augment_params(stop - start, generator, scale_range=self.scale_range)
                     for start, stop in spans]
            params = tuple(torch.cat(parts) for parts in zip(*draws))
        return order, spans, params

    def __iter__(self):
        order, spans, params = self.epoch_plan()
        images_all, labels_all = self._tensors()
        # one host-to-device copy per epoch (order and draws), none per step
        order = order.to(images_all.device)
        if params is not None:
            params = tuple(p.to(images_all.device) for p in params)
        for start, stop in spans:
            index = order[start:stop]
            images = normalise(images_all.index_select(0, index))
            labels = labels_all.index_select(0, index)
            if params is not None:
                images, labels = apply_augment(images, labels, *(p[start:stop] for p in params))
            else:
                labels = labels.long()
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, labels
