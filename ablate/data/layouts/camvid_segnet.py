"""CamVid in SegNet's layout: train/ trainannot/ val/ valannot/ [test/ testannot/] [train.txt ...];
index labels 0-10 in CamVid's 11-class order, void 11 ignored."""

from __future__ import annotations

from pathlib import Path

from ablate.data.classes import IGNORE_INDEX
from ablate.data.layouts.base import SPLITS, Layout, Pair, index_labels, value_table
from ablate.data.layouts.camvid import CAMVID_CLASSES, SEGNET_VOID
from ablate.data.layouts.files import folder_pairs
from ablate.data.layouts.registry import register_layout

# SegNet's own label colours (display only).
_COLOURS = [(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
            (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)]


@register_layout("segnet")
class SegNetLayout(Layout):
    folder = "train/ trainannot/ val/ valannot/ (CamVid, SegNet layout)"
    detect_order = 10
    class_names = CAMVID_CLASSES
    ignore_value = SEGNET_VOID
    _table = value_table({**{i: i for i in range(len(CAMVID_CLASSES))}, SEGNET_VOID: IGNORE_INDEX})

    def __init__(self, root, *, grouped: bool = True):
        super().__init__(root)
        import numpy as np

        self.colours = np.array(_COLOURS, np.uint8)

    @classmethod
    def find(cls, root: Path) -> Path | None:
        for base in (root, root / "CamVid"):
            if any((base / f"{s}annot").is_dir() for s in SPLITS):
                return base
        return None

    def _dirs(self, split: str) -> tuple[Path, Path]:
        return self.root / split, self.root / f"{split}annot"

    def splits(self) -> list[str]:
        return [s for s in SPLITS if any(d.is_dir() for d in self._dirs(s))]

    def pairs(self, split: str) -> list[Pair]:
        self.check_split(split)
        return folder_pairs(self.root, split, *self._dirs(split), found=self.splits(),
                            list_file=self.root / f"{split}.txt", label_hint="{stem}.png")

    def label_indices(self, img, path):
        return index_labels(img, path, self._table, expected=f"0-{SEGNET_VOID - 1}, void {SEGNET_VOID}")

    def mapping_key(self) -> bytes:
        return super().mapping_key() + self._table.tobytes()
