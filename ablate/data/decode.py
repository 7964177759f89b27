"""Read, validate and resize image/label PNG pairs once, into preallocated uint8 tensors."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ablate.data.classes import IGNORE_INDEX, SEGNET_VOID
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


def label_indices(img: Image.Image, path, layout: Layout) -> np.ndarray:
    """Label PNG -> uint8 [H,W] class indices, IGNORE_INDEX for void and unknown colours."""
    if layout.colours is None:
        if img.mode not in ("L", "P", "I", "I;16"):
            raise DataError(
                f"label {path} is {img.mode}, expected single-channel class indices 0-{SEGNET_VOID}; "
                "use the SegNet annot PNGs"
            )
        values = np.asarray(img)
        top = int(values.max()) if values.size else 0
        if top > SEGNET_VOID:
            raise DataError(
                f"label {path} has value {top}, outside the class set 0-{SEGNET_VOID} "
                f"(11 classes + void {SEGNET_VOID}); fix or remove the label"
            )
        labels = values.astype(np.uint8)
        labels[labels == SEGNET_VOID] = IGNORE_INDEX
        return labels
    rgb = np.asarray(img.convert("RGB")).astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    known = (layout.colours.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1])).astype(np.int32)
    order = np.argsort(known)
    sorted_codes, sorted_index = known[order], layout.colour_index[order]
    slot = np.clip(np.searchsorted(sorted_codes, codes), 0, len(sorted_codes) - 1)
    # Colours not in the class file are ignored rather than an error (CamVid has stray colours).
    return np.where(sorted_codes[slot] == codes, sorted_index[slot], IGNORE_INDEX).astype(np.uint8)


def read_pair(pair: Pair, layout: Layout, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """One pair -> (uint8 [H,W,3] image, uint8 [H,W] label), resized to size=(H, W) if given."""
    image = read_image(pair.image)
    label = _open(pair.label)
    if image.size != label.size:
        raise DataError(
            f"size mismatch: image {pair.image} is {image.size[0]}x{image.size[1]} but label "
            f"{pair.label} is {label.size[0]}x{label.size[1]} (WxH); fix one of them"
        )
    labels = label_indices(label, pair.label, layout)
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
