"""Find which CamVid layout a folder holds and pair each split's images with labels.

Three layouts (the README names them too):
  segnet        train/ trainannot/ val/ valannot/ [test/ testannot/], [train.txt ...]; index labels 0-10, void 11
  class_dict    train/ train_labels/ ... + class_dict.csv (name,r,g,b); colour labels <stem>_L.png
  label_colors  LabeledApproved_full/<stem>_L.png + label_colors.txt ("R G B<tab>Name") + an image folder
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ablate.data.classes import CAMVID_CLASSES, colour_classes
from ablate.errors import DataError

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# Without list files the label_colors layout is split by CamVid video sequence (no frame of one
# sequence leaks into another split): Seq05VD -> test, 0006R0 -> val, the rest -> train.
SEQUENCE_SPLIT = {"Seq05VD": "test", "0006R0": "val"}

EXPECTED = (
    "expected one of: SegNet layout (train/ trainannot/ val/ valannot/), "
    "class_dict.csv with train/ train_labels/ val/ val_labels/, "
    "or LabeledApproved_full/ with label_colors.txt"
)


@dataclass(frozen=True)
class Pair:
    name: str  # image file stem
    image: Path
    label: Path


@dataclass(frozen=True)
class Layout:
    kind: str  # "segnet" | "class_dict" | "label_colors"
    root: Path
    class_names: tuple[str, ...]
    colours: np.ndarray | None = None  # [K,3] label colours (colour layouts only)
    colour_index: np.ndarray | None = None  # [K] class index of each colour (IGNORE_INDEX = ignore)

    def splits(self) -> list[str]:
        if self.kind == "label_colors":
            return [s for s in SPLITS if _label_colors_pairs(self, s)]
        return [s for s in SPLITS if any(d.is_dir() for d in _split_dirs(self, s))]

    def pairs(self, split: str) -> list[Pair]:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        if self.kind == "label_colors":
            pairs = _label_colors_pairs(self, split)
            if not pairs:
                raise DataError(
                    f"split {split!r} has no labelled frames in {self.root}; "
                    f"add {split}.txt listing its images"
                )
            return pairs
        image_dir, label_dir = _split_dirs(self, split)
        if not image_dir.is_dir() and not label_dir.is_dir():
            found = ", ".join(self.splits()) or "none"
            raise DataError(
                f"split {split!r} not found in {self.root} (found: {found}); "
                f"expected {image_dir.name}/ and {label_dir.name}/"
            )
        for folder, partner in ((image_dir, label_dir), (label_dir, image_dir)):
            if not folder.is_dir():
                raise DataError(
                    f"{folder} is missing but {partner.name}/ exists; add the folder or remove "
                    f"{partner.name}/"
                )
        list_file = self.root / f"{split}.txt"
        if self.kind == "segnet" and list_file.is_file():
            pairs = _listed_pairs(list_file, image_dir, label_dir)
        else:
            pairs = _stem_pairs(image_dir, label_dir)
        if not pairs:
            raise DataError(
                f"split {split!r} is empty: no images in {image_dir}; add images or remove the folder"
            )
        return pairs


def detect_layout(root, *, grouped: bool = True) -> Layout:
    """The layout of `root` (or of root/CamVid), or a DataError listing what was expected."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist; pass --data PATH to a CamVid folder "
            "or run `ablate data download`"
        )
    for base in (root, root / "CamVid"):
        if any((base / f"{s}annot").is_dir() for s in SPLITS):
            return Layout("segnet", base, CAMVID_CLASSES)
        if (base / "class_dict.csv").is_file():
            entries = _read_class_dict(base / "class_dict.csv")
            return Layout("class_dict", base, *colour_classes(entries, grouped=grouped))
        if (base / "LabeledApproved_full").is_dir():
            colours_file = base / "label_colors.txt"
            if not colours_file.is_file():
                raise DataError(f"{colours_file} is missing; it names each label colour ('R G B<tab>Name')")
            entries = _read_label_colors(colours_file)
            return Layout("label_colors", base, *colour_classes(entries, grouped=grouped))
    raise DataError(f"unknown dataset layout in {root}: {EXPECTED}")


def _split_dirs(layout: Layout, split: str) -> tuple[Path, Path]:
    suffix = "annot" if layout.kind == "segnet" else "_labels"
    return layout.root / split, layout.root / f"{split}{suffix}"


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _label_stem(stem: str) -> str:
    return stem[:-2] if stem.endswith("_L") else stem


def _stem_pairs(image_dir: Path, label_dir: Path) -> list[Pair]:
    images = _images_in(image_dir)
    labels = {_label_stem(stem): path for stem, path in _images_in(label_dir).items()}
    for stem, path in images.items():
        if stem not in labels:
            raise DataError(
                f"image {path} has no label in {label_dir}; add {stem}.png (or {stem}_L.png) "
                "or remove the image"
            )
    for stem, path in labels.items():
        if stem not in images:
            raise DataError(f"label {path} has no image in {image_dir}; add the image or remove the label")
    return [Pair(stem, images[stem], labels[stem]) for stem in sorted(images)]


def _listed_pairs(list_file: Path, image_dir: Path, label_dir: Path) -> list[Pair]:
    # Lines are "image [label]" with a foreign prefix (/SegNet/CamVid/train/x.png): match by file name.
    pairs = []
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        image = image_dir / Path(fields[0].replace("\\", "/")).name
        label = label_dir / Path(fields[-1].replace("\\", "/")).name
        if not image.is_file():
            raise DataError(
                f"{list_file}:{number} lists {image.name} but {image} is missing; "
                f"add the image or remove the line"
            )
        if not label.is_file():
            raise DataError(
                f"image {image} has no label: {label} (listed in {list_file}:{number}) is missing; "
                "add the label or remove the line"
            )
        pairs.append(Pair(image.stem, image, label))
    return sorted(pairs, key=lambda p: p.name)


def _read_class_dict(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
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


def _read_label_colors(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            entries.append((" ".join(fields[3:]), (int(fields[0]), int(fields[1]), int(fields[2]))))
        except (IndexError, ValueError):
            raise DataError(f"{path}:{number}: expected 'R G B<tab>Name', found {line!r}") from None
        if not entries[-1][0]:
            raise DataError(f"{path}:{number}: colour has no class name: {line!r}")
    if not entries:
        raise DataError(f"{path} lists no classes; add 'R G B<tab>Name' lines")
    return entries


def _label_colors_image_dir(root: Path, stems: set[str]) -> Path:
    # The raw frames usually live in 701_StillsRaw_full/; accept any folder whose files match the labels.
    best, best_hits = None, 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "LabeledApproved_full"):
        hits = len(stems & set(_images_in(folder)))
        if hits > best_hits:
            best, best_hits = folder, hits
    if best is None:
        raise DataError(
            f"no image folder in {root} matches LabeledApproved_full/*_L.png; "
            "add the frames (e.g. 701_StillsRaw_full/)"
        )
    return best


def _label_colors_pairs(layout: Layout, split: str) -> list[Pair]:
    label_dir = layout.root / "LabeledApproved_full"
    labels = {_label_stem(stem): path for stem, path in _images_in(label_dir).items()}
    image_dir = _label_colors_image_dir(layout.root, set(labels))
    images = _images_in(image_dir)
    list_file = layout.root / f"{split}.txt"
    if list_file.is_file():
        wanted = {
            _label_stem(Path(line.split()[0].replace("\\", "/")).stem)
            for line in list_file.read_text().splitlines()
            if line.strip()
        }
    elif any((layout.root / f"{s}.txt").is_file() for s in SPLITS):
        return []
    else:
        wanted = {stem for stem in labels if SEQUENCE_SPLIT.get(stem.split("_")[0], "train") == split}
    pairs = []
    for stem in sorted(wanted):
        if stem not in labels:
            raise DataError(
                f"{list_file if list_file.is_file() else image_dir}: frame {stem} has no label "
                f"{label_dir / (stem + '_L.png')}; add it or drop the frame"
            )
        if stem not in images:
            raise DataError(
                f"label {labels[stem]} has no image in {image_dir}; add the image or remove the label"
            )
        pairs.append(Pair(stem, images[stem], labels[stem]))
    return pairs
