"""`SegData` (one decoded split in memory) and `load_split`, which builds it once and caches it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ablate.data import cache as _cache
from ablate.data.decode import decode_pairs
from ablate.data.layouts import detect_layout


@dataclass
class SegData:
    """One split, decoded once and resized once, kept as uint8 tensors."""

    images: torch.Tensor  # uint8 [N,3,H,W]
    labels: torch.Tensor  # uint8 [N,H,W], IGNORE_INDEX (255) for void / unknown colours
    names: list[str]  # file stems, sorted
    class_names: tuple[str, ...]
    split: str

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def find_splits(root, *, layout: str | None = None) -> list[str]:
    """The splits present under root, in train/val/test order."""
    return detect_layout(root, layout=layout).splits()


def load_split(
    root,
    split: str,
    *,
    size=(256, 256),
    cache_dir=None,
    grouped: bool = True,
    progress: bool = False,
    cache: bool = True,
    layout: str | None = None,
) -> SegData:
    """Decode and resize one split (size=(H, W)), or load it from the on-disk cache.

    ``layout`` forces a registered layout (default: detected); grouped maps the 32 CamVid colour
    classes to SegNet's 11 (the CamVid colour layouts only).
    """
    size = (int(size[0]), int(size[1]))
    layout = detect_layout(root, layout=layout, grouped=grouped)
    pairs = layout.pairs(split)
    names = [pair.name for pair in pairs]
    path = None
    if cache:
        key = _cache.split_key(layout, split, pairs, size)
        path = _cache.cache_path(cache_dir or _cache.default_cache_dir(), layout, split, size, key)
        hit = _cache.load_cached(path)
        if hit is not None and hit.get("names") == names:
            return SegData(hit["images"], hit["labels"], names, layout.class_names, split)
    images, labels = decode_pairs(pairs, layout, size, progress=progress, desc=f"decode {split}")
    if path is not None:
        _cache.save_cached(path, {"images": images, "labels": labels, "names": names})
    return SegData(images, labels, names, layout.class_names, split)
