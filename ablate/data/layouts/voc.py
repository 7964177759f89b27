"""Pascal VOC 2012 segmentation: JPEGImages/*.jpg, SegmentationClass/*.png (palette PNGs: the palette
index is the class), ImageSets/Segmentation/{train,val}.txt; 21 classes, 255 (object borders) ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ablate.data.classes import IGNORE_INDEX
from ablate.data.layouts.base import SPLITS, Layout, Pair, index_labels, raise_unmatched, value_table
from ablate.data.layouts.registry import register_layout
from ablate.errors import DataError

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
LISTS = Path("ImageSets") / "Segmentation"


def voc_palette(n: int) -> np.ndarray:
    """VOC's colour map: the bits of the class index spread over R, G, B from the high bit down."""
    out = np.zeros((n, 3), np.uint8)
    for index in range(n):
        value, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        out[index] = (r, g, b)
    return out


@register_layout("voc")
class VOCLayout(Layout):
    folder = "JPEGImages/ + SegmentationClass/ + ImageSets/Segmentation/{train,val}.txt (Pascal VOC 2012)"
    detect_order = 22
    class_names = VOC_CLASSES
    ignore_value = 255
    _table = value_table({**{i: i for i in range(len(VOC_CLASSES))}, 255: IGNORE_INDEX})

    def __init__(self, root, *, grouped: bool = True):
        super().__init__(root)
        self.colours = voc_palette(len(VOC_CLASSES))

    @classmethod
    def find(cls, root: Path) -> Path | None:
        for base in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
            if (base / "JPEGImages").is_dir() and (base / "SegmentationClass").is_dir():
                return base
        return None

    def splits(self) -> list[str]:
        return [s for s in SPLITS if (self.root / LISTS / f"{s}.txt").is_file()]

    def pairs(self, split: str) -> list[Pair]:
        self.check_split(split)
        list_file = self.root / LISTS / f"{split}.txt"
        if not list_file.is_file():
            raise DataError(f"split {split!r} not found in {self.root} (found: {', '.join(self.splits()) or 'none'}); "
                            f"expected {LISTS / f'{split}.txt'} naming its images")
        pairs, problems = [], []
        for number, line in enumerate(list_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            stem = line.split()[0]
            image = self.root / "JPEGImages" / f"{stem}.jpg"
            label = self.root / "SegmentationClass" / f"{stem}.png"
            if not image.is_file():
                problems.append(f"{list_file}:{number} lists {stem} but {image} is missing; add the image or "
                                "remove the line")
            elif not label.is_file():
                problems.append(f"image {image} has no label: {label} (listed in {list_file}:{number}) is "
                                "missing; add the label or remove the line")
            else:
                pairs.append(Pair(stem, image, label))
        raise_unmatched(problems, pairs)
        if not pairs:
            raise DataError(f"split {split!r} is empty: {list_file} lists no images; add them or remove the file")
        return sorted(pairs, key=lambda p: p.name)

    def label_indices(self, img, path):
        return index_labels(img, path, self._table, expected="0-20, 255 ignored",
                            fix="use SegmentationClass/ palette PNGs (not SegmentationObject)")

    def mapping_key(self) -> bytes:
        return super().mapping_key() + self._table.tobytes()
