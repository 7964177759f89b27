"""CamVid's 32-class colour layout with a class table: train/ train_labels/ val/ val_labels/ test/ test_labels/
+ class_dict.csv (name,r,g,b); labels <stem>_L.png, grouped to SegNet's 11 classes by default."""

from __future__ import annotations

from pathlib import Path

from ablate.data.layouts.base import SPLITS, Layout, Pair, colour_labels
from ablate.data.layouts.camvid import colour_classes, display_colours
from ablate.data.layouts.files import folder_pairs
from ablate.data.layouts.registry import register_layout
from ablate.errors import DataError


@register_layout("class_dict")
class ClassDictLayout(Layout):
    folder = "class_dict.csv with train/ train_labels/ val/ val_labels/ (CamVid, 32 colour classes)"
    detect_order = 11
    ignore_value = "Void and colours not in class_dict.csv"

    def __init__(self, root, *, grouped: bool = True):
        super().__init__(root)
        entries = read_class_dict(self.root / "class_dict.csv")
        self.class_names, self.file_colours, self.colour_index = colour_classes(entries, grouped=grouped)
        self.colours = display_colours(self.class_names, self.file_colours, self.colour_index)

    @classmethod
    def find(cls, root: Path) -> Path | None:
        for base in (root, root / "CamVid"):
            if (base / "class_dict.csv").is_file():
                return base
        return None

    def _dirs(self, split: str) -> tuple[Path, Path]:
        return self.root / split, self.root / f"{split}_labels"

    def splits(self) -> list[str]:
        return [s for s in SPLITS if any(d.is_dir() for d in self._dirs(s))]

    def pairs(self, split: str) -> list[Pair]:
        self.check_split(split)
        return folder_pairs(self.root, split, *self._dirs(split), found=self.splits(), label_strip="_L",
                            label_hint="{stem}_L.png")

    def label_indices(self, img, path):
        return colour_labels(img, path, self.file_colours, self.colour_index)  # CamVid has stray colours: ignored

    def mapping_key(self) -> bytes:
        return super().mapping_key() + self.file_colours.tobytes() + self.colour_index.tobytes()


def read_class_dict(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    header = [f.strip().lower() for f in lines[0].split(",")] if lines else []
    if header[:4] != ["name", "r", "g", "b"]:
        raise DataError(f"{path} must start with the header 'name,r,g,b' (found {lines[:1]})")
    entries = []
    for number, line in enumerate(lines[1:], 2):
        fields = [f.strip() for f in line.split(",")]
        try:
            entries.append((fields[0], (int(fields[1]), int(fields[2]), int(fields[3]))))
        except (IndexError, ValueError):
            raise DataError(f"{path}:{number}: expected 'name,r,g,b', found {line!r}") from None
    if not entries:
        raise DataError(f"{path} lists no classes; add 'name,r,g,b' rows")
    return entries
