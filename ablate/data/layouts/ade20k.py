"""ADE20K (SceneParsing, ADEChallengeData2016): images/{training,validation}/*.jpg with
annotations/{training,validation}/*.png; values 1-150 are the classes, 0 ("other") is ignored
(mmseg's reduce_zero_label: k -> k-1, 0 -> ignore)."""

from __future__ import annotations

from pathlib import Path

from ablate.data.classes import IGNORE_INDEX
from ablate.data.layouts.base import Layout, Pair, index_labels, value_table
from ablate.data.layouts.files import folder_pairs
from ablate.data.layouts.registry import register_layout

# The 150 SceneParsing classes in label order (objectInfo150; mmseg's ADE20KDataset names).
ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
)  # fmt: skip
SPLIT_DIRS = {"train": "training", "val": "validation"}
TOP = "ADEChallengeData2016"


@register_layout("ade20k")
class ADE20KLayout(Layout):
    folder = f"{TOP}/images/{{training,validation}}/ + {TOP}/annotations/{{training,validation}}/"
    detect_order = 21
    class_names = ADE20K_CLASSES
    ignore_value = 0
    _table = value_table({0: IGNORE_INDEX, **{k: k - 1 for k in range(1, len(ADE20K_CLASSES) + 1)}})

    @classmethod
    def find(cls, root: Path) -> Path | None:
        for base in (root, root / TOP):
            if (base / "images" / "training").is_dir() and (base / "annotations").is_dir():
                return base
        return None

    def _dirs(self, split: str) -> tuple[Path, Path]:
        sub = SPLIT_DIRS.get(split, split)
        return self.root / "images" / sub, self.root / "annotations" / sub

    def splits(self) -> list[str]:
        return [s for s in SPLIT_DIRS if self._dirs(s)[0].is_dir()]

    def pairs(self, split: str) -> list[Pair]:
        self.check_split(split)
        return folder_pairs(self.root, split, *self._dirs(split), found=self.splits(), label_hint="{stem}.png")

    def label_indices(self, img, path):
        return index_labels(img, path, self._table, expected=f"0 (ignored) - {len(ADE20K_CLASSES)}")

    def mapping_key(self) -> bytes:
        return super().mapping_key() + self._table.tobytes()
