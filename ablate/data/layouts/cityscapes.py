"""Cityscapes: leftImg8bit/<split>/<city>/<name>_leftImg8bit.png with gtFine/<split>/<city>/<name>_gtFine_labelIds.png;
the 34 labelIds are mapped to the 19 train ids of cityscapesscripts' table, everything else (and 255) ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ablate.data.classes import IGNORE_INDEX
from ablate.data.layouts.base import SPLITS, Layout, Pair, index_labels, raise_unmatched, value_table
from ablate.data.layouts.registry import register_layout
from ablate.errors import DataError

# (train id order) name, labelId, colour - cityscapesscripts/helpers/labels.py
TRAIN_CLASSES = (
    ("road", 7, (128, 64, 128)), ("sidewalk", 8, (244, 35, 232)), ("building", 11, (70, 70, 70)),
    ("wall", 12, (102, 102, 156)), ("fence", 13, (190, 153, 153)), ("pole", 17, (153, 153, 153)),
    ("traffic light", 19, (250, 170, 30)), ("traffic sign", 20, (220, 220, 0)), ("vegetation", 21, (107, 142, 35)),
    ("terrain", 22, (152, 251, 152)), ("sky", 23, (70, 130, 180)), ("person", 24, (220, 20, 60)),
    ("rider", 25, (255, 0, 0)), ("car", 26, (0, 0, 142)), ("truck", 27, (0, 0, 70)), ("bus", 28, (0, 60, 100)),
    ("train", 31, (0, 80, 100)), ("motorcycle", 32, (0, 0, 230)), ("bicycle", 33, (119, 11, 32)),
)  # fmt: skip
LABEL_IDS = 34  # labelIds 0-33; the license plate (-1) is stored as 255
IMAGE_SUFFIX, LABEL_SUFFIX = "_leftImg8bit", "_gtFine_labelIds"


@register_layout("cityscapes")
class CityscapesLayout(Layout):
    folder = "leftImg8bit/<split>/<city>/*_leftImg8bit.png + gtFine/<split>/<city>/*_gtFine_labelIds.png"
    detect_order = 20
    class_names = tuple(name for name, _, _ in TRAIN_CLASSES)
    ignore_value = "labelIds without a train id (0-6, 9, 10, 14-16, 18, 29, 30, 255)"
    _table = value_table({**{i: IGNORE_INDEX for i in range(LABEL_IDS)}, 255: IGNORE_INDEX,
                          **{label_id: train_id for train_id, (_, label_id, _) in enumerate(TRAIN_CLASSES)}})

    def __init__(self, root, *, grouped: bool = True):
        super().__init__(root)
        self.colours = np.array([rgb for _, _, rgb in TRAIN_CLASSES], np.uint8)

    @classmethod
    def find(cls, root: Path) -> Path | None:
        for base in (root, root / "cityscapes"):
            if (base / "leftImg8bit").is_dir() and (base / "gtFine").is_dir():
                return base
        return None

    def splits(self) -> list[str]:
        return [s for s in SPLITS if (self.root / "leftImg8bit" / s).is_dir()]

    def pairs(self, split: str) -> list[Pair]:
        self.check_split(split)
        image_dir, label_dir = self.root / "leftImg8bit" / split, self.root / "gtFine" / split
        if not image_dir.is_dir():
            raise DataError(f"split {split!r} not found in {self.root} (found: {', '.join(self.splits()) or 'none'}); "
                            f"expected leftImg8bit/{split}/<city>/")
        if not label_dir.is_dir():
            raise DataError(f"{label_dir} is missing but leftImg8bit/{split}/ exists; add gtFine/{split}/")
        images = {p.name[: -len(IMAGE_SUFFIX + ".png")]: p for p in sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}.png"))}
        labels = {p.name[: -len(LABEL_SUFFIX + ".png")]: p for p in sorted(label_dir.glob(f"*/*{LABEL_SUFFIX}.png"))}
        problems = [f"image {path} has no label {label_dir / path.parent.name / f'{name}{LABEL_SUFFIX}.png'}; "
                    "add it or remove the image" for name, path in images.items() if name not in labels]
        problems += [f"label {path} has no image in {image_dir / path.parent.name}; add the image or remove the label"
                     for name, path in labels.items() if name not in images]
        raise_unmatched(problems, [Pair(name, images[name], labels[name]) for name in sorted(images) if name in labels])
        if not images:
            raise DataError(f"split {split!r} is empty: no */*{IMAGE_SUFFIX}.png in {image_dir}; add images")
        return [Pair(name, images[name], labels[name]) for name in sorted(images)]

    def label_indices(self, img, path):
        return index_labels(img, path, self._table, expected="Cityscapes labelIds 0-33 or 255",
                            fix="use the *_gtFine_labelIds.png files (not color or instanceIds)")

    def mapping_key(self) -> bytes:
        return super().mapping_key() + self._table.tobytes()
