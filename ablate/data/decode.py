"""Read, validate and resize image/label pairs once, into preallocated uint8 tensors (labels mapped to
class indices by the layout)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ablate.data.layouts import Layout, Pair
from ablate.errors import DataError


def _open(path, mode: str | None = None) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here, naming the file
            return img.convert(mode) if mode and img.mode != mode else img.copy()
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        raise DataError(
            f"cannot read {path} ({type(exc).__name__}: {exc}); replace or re-download the file"
        ) from None


def read_image(path) -> Image.Image:
    return _open(path, "RGB")


def read_pair(pair: Pair, layout: Layout, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """One pair -> (uint8 [H,W,3] image, uint8 [H,W] label), resized to size=(H, W) if given."""
    image = read_image(pair.image)
    label = _open(pair.label)
    if image.size != label.size:
        raise DataError(
            f"size mismatch: image {pair.image} is {image.size[0]}x{image.size[1]} but label "
            f"{pair.label} is {label.size[0]}x{label.size[1]} (WxH); fix one of them"
        )
    labels = layout.label_indices(label, pair.label)
    if size is not None and (image.size[1], image.size[0]) != tuple(size):
        wh = (size[1], size[0])
        image = image.resize(wh, Image.BILINEAR)
        labels = np.array(Image.fromarray(labels).resize(wh, Image.NEAREST))
    return np.array(image), labels


def worker_count() -> int:
    # PNG decoding releases the GIL in zlib; a few threads are enough and leave cores to others.
    return max(1, min(4, os.cpu_count() or 1))


def decode_pairs(
    pairs: list[Pair], layout: Layout, size: tuple[int, int], *, progress: bool = False, desc: str = "decode"
):
    """Decode and resize every pair once -> (images uint8 [N,3,H,W], labels uint8 [N,H,W]) tensors."""
    import torch

    height, width = size
    images = torch.empty((len(pairs), 3, height, width), dtype=torch.uint8)
    labels = torch.empty((len(pairs), height, width), dtype=torch.uint8)

    def load(i: int) -> None:
        image, label = read_pair(pairs[i], layout, size)
        images[i] = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        labels[i] = torch.from_numpy(np.ascontiguousarray(label))

    with ThreadPoolExecutor(worker_count()) as pool:
        done = pool.map(load, range(len(pairs)))
        if progress:
            from tqdm.auto import tqdm

            done = tqdm(done, total=len(pairs), desc=desc, unit="img")
        for _ in done:
            pass
    return images, labels
