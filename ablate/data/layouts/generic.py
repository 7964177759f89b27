"""A team's own folder: images with masks of the same file name, and a classes file.

Folder shapes (the first that exists): ``<split>/images`` + ``<split>/masks``; ``images/<split>`` +
``masks/<split>``; or flat ``images/`` + ``masks/`` with list files ``<split>.txt`` (one image name
per line). Classes: ``classes.txt`` (one class per line, in label-value order; optionally ``name R G B``)
or ``classes.json`` (``{"classes": ["road", ...] or [{"name": "road", "colour": [r, g, b]}, ...],
"ignore": 255, "ignore_colour": [0, 0, 0]}``). ``generic`` reads index masks (value k = class k,
``ignore`` ignored); ``generic_colour`` reads RGB masks through the classes' colours.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ablate.data.classes import IGNORE_INDEX
from ablate.data.layouts.base import (
    SPLITS,
    Layout,
    Pair,
    colour_labels,
    index_labels,
    raise_unmatched,
    value_table,
)
from ablate.data.layouts.files import IMAGE_SUFFIXES, folder_pairs, images_in
from ablate.data.layouts.registry import register_layout
from ablate.errors import DataError

CLASS_FILES = ("classes.json", "classes.txt")
FOLDER = "images/ + masks/ (or <split>/images + <split>/masks) with classes.txt or classes.json"


def _shape(root: Path) -> str | None:
    if any((root / s / "images").is_dir() or (root / s / "masks").is_dir() for s in SPLITS):
        return "split_dirs"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "nested" if any((root / "images" / s).is_dir() for s in SPLITS) else "flat"
    return None


def _find(root: Path, *, colour: bool) -> Path | None:
    if _shape(root) is None:
        return None
    if not any((root / f).is_file() for f in CLASS_FILES):
        raise DataError(f"{root} has images and masks but no classes file; add classes.txt naming one class "
                        "per line in mask-value order (or classes.json with names, colours and the ignore value)")
    classes = read_classes(root)
    return root if colour == (classes.colours is not None and _first_mask_is_colour(root)) else None


def _first_mask_is_colour(root: Path) -> bool:
    from PIL import Image

    for folder in (root / "masks", *(root / s / "masks" for s in SPLITS), *(root / "masks" / s for s in SPLITS)):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    try:
                        with Image.open(path) as img:
                            return img.mode in ("RGB", "RGBA")
                    except Exception:  # noqa: BLE001 - an unreadable mask is reported when it is decoded
                        return False
    return False


class Classes:
    """A classes file read: names, optional colours [C,3], the ignored index value and colour."""

    def __init__(self, names, colours, ignore: int, ignore_colour):
        self.names, self.colours, self.ignore, self.ignore_colour = tuple(names), colours, ignore, ignore_colour


def read_classes(root: Path) -> Classes:
    path = next(root / f for f in CLASS_FILES if (root / f).is_file())
    if path.suffix == ".json":
        names, colours, ignore, ignore_colour = _read_json(path)
    else:
        names, colours, ignore, ignore_colour = _read_txt(path)
    _check_names(path, names)
    if not isinstance(ignore, int) or isinstance(ignore, bool) or not len(names) <= ignore < 65536:
        raise DataError(f"{path}: ignore must be a whole number from {len(names)} (after the classes) to 65535, "
                        f"got {ignore!r}")
    if colours is not None and len({tuple(c) for c in colours}) != len(colours):
        raise DataError(f"{path}: two classes share a colour; give each class its own colour")
    return Classes(names, colours, ignore, ignore_colour)


def _rgb(path: Path, value, where: str) -> tuple[int, int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, int) and 0 <= v < 256
                                                                         for v in value)):
        raise DataError(f"{path}: {where}: expected a colour [r, g, b] of whole numbers 0-255, got {value!r}")
    return tuple(value)


def _read_json(path: Path):
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); fix the file") from None
    data = {"classes": data} if isinstance(data, list) else data
    entries = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected {{\"classes\": [\"name\", ...] or [{{\"name\": ..., \"colour\": "
                        "[r, g, b]}, ...], \"ignore\": 255}")
    names, colours = [], []
    for i, entry in enumerate(entries):
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise DataError(f"{path}: classes[{i}]: expected a name or {{\"name\": ..., \"colour\": [r, g, b]}}")
        names.append(entry["name"])
        colour = entry.get("colour", entry.get("color"))
        colours.append(None if colour is None else _rgb(path, colour, f"classes[{i}].colour"))
    ignore_colour = data.get("ignore_colour", data.get("ignore_color"))
    ignore_colour = None if ignore_colour is None else _rgb(path, ignore_colour, "ignore_colour")
    return names, _all_or_none(colours), data.get("ignore", IGNORE_INDEX), ignore_colour


def _read_txt(path: Path):
    names, colours = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) >= 4 and all(f.isdigit() for f in fields[-3:]):
            names.append(" ".join(fields[:-3]))
            colours.append(_rgb(path, [int(f) for f in fields[-3:]], f"line {number}"))
        else:
            names.append(line)
            colours.append(None)
    return names, _all_or_none(colours), IGNORE_INDEX, None


def _all_or_none(colours):
    return None if any(c is None for c in colours) else np.array(colours, np.uint8).reshape(-1, 3)


def _check_names(path: Path, names) -> None:
    from ablate.rundir import class_column

    if not names:
        raise DataError(f"{path} names no classes; add one class per line")
    if len(names) >= IGNORE_INDEX:
        raise DataError(f"{path} names {len(names)} classes; at most {IGNORE_INDEX - 1} are supported")
    columns = [class_column(n) for n in names]
    for i, column in enumerate(columns):
        if columns.index(column) != i:
            raise DataError(f"{path}: classes {names[columns.index(column)]!r} and {names[i]!r} give the same "
                            f"metric column {column}; rename one")


class _Folder(Layout):
    folder = FOLDER
    detect_order = 100  # loose: tried after every layout with a distinctive shape

    def __init__(self, root, *, grouped: bool = True):
        super().__init__(root)
        self.classes = read_classes(self.root)
        self.class_names, self.colours = self.classes.names, self.classes.colours

    def _dirs(self, split: str) -> tuple[Path, Path]:
        if _shape(self.root) == "split_dirs":
            return self.root / split / "images", self.root / split / "masks"
        return self.root / "images" / split, self.root / "masks" / split

    def splits(self) -> list[str]:
        if _shape(self.root) == "flat":
            return [s for s in SPLITS if (self.root / f"{s}.txt").is_file()]
        return [s for s in SPLITS if any(d.is_dir() for d in self._dirs(s))]

    def pairs(self, split: str) -> list[Pair]:
        self.check_split(split)
        if _shape(self.root) != "flat":
            return folder_pairs(self.root, split, *self._dirs(split), found=self.splits())
        list_file = self.root / f"{split}.txt"
        if not list_file.is_file():
            found = ", ".join(self.splits()) or "none"
            raise DataError(f"split {split!r} not found in {self.root} (found: {found}); add {list_file.name} "
                            f"naming its images one per line, or sort them into {split}/images + {split}/masks")
        images, masks = images_in(self.root / "images"), images_in(self.root / "masks")
        pairs, problems = [], []
        for number, line in enumerate(list_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            stem = Path(line.strip().replace("\\", "/")).stem
            if stem not in images:
                problems.append(f"{list_file}:{number} lists {stem} but images/ has no such image; add the image "
                                "or remove the line")
            elif stem not in masks:
                problems.append(f"image {images[stem]} has no mask in {self.root / 'masks'}; add {stem}.png or "
                                f"remove it from {list_file.name}")
            else:
                pairs.append(Pair(stem, images[stem], masks[stem]))
        raise_unmatched(problems, pairs)
        if not pairs:
            raise DataError(f"split {split!r} is empty: {list_file} names no images; add them or remove the file")
        return sorted(pairs, key=lambda p: p.name)


@register_layout("generic")
class GenericLayout(_Folder):
    """Index masks: value k is class k of the classes file, its ``ignore`` value (255 by default) is ignored."""

    def __init__(self, root, *, grouped: bool = True):
        super().__init__(root, grouped=grouped)
        self.ignore_value = self.classes.ignore
        mapping = {**{k: k for k in range(len(self.class_names))}, self.ignore_value: IGNORE_INDEX}
        self._table = value_table(mapping, size=max(256, self.ignore_value + 1))

    @classmethod
    def find(cls, root: Path) -> Path | None:
        return _find(root, colour=False)

    def label_indices(self, img, path):
        return index_labels(img, path, self._table, expected=f"0-{len(self.class_names) - 1}, ignore "
                            f"{self.ignore_value}", fix="fix the mask, or add the class to the classes file")

    def mapping_key(self) -> bytes:
        return super().mapping_key() + self._table.tobytes()


@register_layout("generic_colour")
class GenericColourLayout(_Folder):
    """Colour masks: each class's colour from the classes file; ``ignore_colour`` ignored; other colours errors."""

    detect_order = 99  # before generic, which declines colour masks with coloured classes

    def __init__(self, root, *, grouped: bool = True):
        super().__init__(root, grouped=grouped)
        if self.colours is None:
            raise DataError(f"{self.root}: the colour-mask layout needs a colour for every class in the classes "
                            "file (classes.txt: 'name R G B'; classes.json: \"colour\": [r, g, b])")
        extra = [] if self.classes.ignore_colour is None else [self.classes.ignore_colour]
        self.ignore_value = self.classes.ignore_colour
        self._colours = np.array([*self.colours.tolist(), *extra], np.uint8).reshape(-1, 3)
        self._index = np.array([*range(len(self.class_names)), *[IGNORE_INDEX] * len(extra)], np.uint8)

    @classmethod
    def find(cls, root: Path) -> Path | None:
        return _find(root, colour=True)

    def label_indices(self, img, path):
        return colour_labels(img, path, self._colours, self._index,
                             unknown_fix="add the colour to the classes file, or set ignore_colour")

    def mapping_key(self) -> bytes:
        return super().mapping_key() + self._colours.tobytes() + self._index.tobytes()
