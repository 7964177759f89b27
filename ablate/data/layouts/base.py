"""The one small base every dataset layout derives from (Optuna's ``BaseStorage`` pattern).

A layout says how a folder is read: whether it holds the layout (``find``), its splits, which
label file goes with which image, and how a label file's values become class indices
(``label_indices``). It carries the dataset's class names, display colours and the value its
files use for "not labelled". Where the folder comes from (``--data``, a download, synthetic
scenes) is a dataset *kind* (``ablate.data.registry``), a separate question.

Label values inside ablate are always class indices 0..C-1 with ``IGNORE_INDEX`` (255) for
pixels no loss or metric counts; each layout maps its files' own values onto that.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ablate.data.classes import IGNORE_INDEX
from ablate.errors import DataError

SPLITS = ("train", "val", "test")
NOT_IN_CLASS_SET = -1  # a value table's entry for raw label values that are errors


@dataclass(frozen=True)
class Pair:
    name: str  # unique within the split (usually the image's file stem)
    image: Path
    label: Path


class Layout(abc.ABC):
    """How one folder is read. Subclasses set the class attributes and implement the four methods."""

    name: ClassVar[str] = ""  # set by ``register_layout``
    folder: ClassVar[str] = ""  # what the folder looks like, for errors and the README
    # Detection tries lower first: shipped layouts with a distinctive shape 10-30, a user's own 50 by
    # default (before the loose generic folders, 99-100).
    detect_order: ClassVar[int] = 50

    class_names: tuple[str, ...] = ()
    colours: np.ndarray | None = None  # [C,3] uint8 display colours, when the dataset has them
    ignore_value: object = IGNORE_INDEX  # what the label files use for "not labelled" (as documented)

    def __init__(self, root, *, grouped: bool = True):
        # ``grouped``: an option of the CamVid colour layouts (32 -> 11 classes); others ignore it.
        self.root = Path(root)

    @classmethod
    @abc.abstractmethod
    def find(cls, root: Path) -> Path | None:
        """The dataset folder at or just under ``root`` when it has this layout's shape, else None."""

    @abc.abstractmethod
    def splits(self) -> list[str]:
        """The splits present, in train/val/test order."""

    @abc.abstractmethod
    def pairs(self, split: str) -> list[Pair]:
        """Every (image, label) of ``split``, sorted by name; a DataError naming the file and fix otherwise."""

    @abc.abstractmethod
    def label_indices(self, img, path) -> np.ndarray:
        """A decoded label file (PIL image) -> uint8 [H,W] class indices, IGNORE_INDEX where ignored."""

    def mapping_key(self) -> bytes:
        """What decides the decoded label values, for the decode-once cache key (class set and value map)."""
        return repr((self.name, self.class_names)).encode()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")

    def describe(self) -> dict:
        """What ``data check`` and study.json record about the layout."""
        colours = None if self.colours is None else np.asarray(self.colours).tolist()
        return {"layout": self.name, "root": str(self.root), "classes": list(self.class_names),
                "colours": colours, "ignore_value": _json_value(self.ignore_value)}


def _json_value(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value) if isinstance(value, tuple) else value


class PairingError(DataError):
    """Every unmatched image or label of a split (``problems``, one line each) and the pairs that did match
    (``pairs``: data check still decodes them); the message is the first problem and how many more there are."""

    def __init__(self, problems: list[str], pairs: list[Pair]):
        self.problems, self.pairs = list(problems), list(pairs)
        more = len(self.problems) - 1
        super().__init__(self.problems[0] + (f" (and {more} more; `ablate data check` lists them)" if more else ""))


def raise_unmatched(problems: list[str], pairs: list[Pair]) -> None:
    if problems:
        raise PairingError(problems, pairs)


def value_table(mapping: dict[int, int], size: int = 256) -> np.ndarray:
    """raw label value -> class index (or IGNORE_INDEX); every other value is NOT_IN_CLASS_SET."""
    table = np.full(size, NOT_IN_CLASS_SET, np.int16)
    for raw, index in mapping.items():
        table[int(raw)] = int(index)
    return table


def index_labels(img, path, table: np.ndarray, *, expected: str, fix: str = "fix or remove the label") -> np.ndarray:
    """Single-channel (or palette: the index, never its RGB) label -> class indices through ``table``.

    ``expected`` names the allowed raw values in the error, e.g. "0-10, void 11".
    """
    if img.mode not in ("L", "P", "I", "I;16"):
        raise DataError(f"label {path} is {img.mode}, expected single-channel class indices ({expected}); "
                        "save masks as 8-bit grey or palette PNGs")
    values = np.asarray(img)
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low < 0 or high >= len(table):
        raise DataError(f"label {path} has value {low if low < 0 else high}, outside the class set ({expected}); {fix}")
    # min/max are ~100x cheaper than a per-pixel check: look at pixels only when [min, max] holds an invalid value,
    # by range (VOC, Cityscapes, generic: one run of invalid values) or, for scattered ones, by counting
    invalid = np.flatnonzero(table[low:high + 1] == NOT_IN_CLASS_SET) + low
    if invalid.size:
        runs = np.split(invalid, np.flatnonzero(np.diff(invalid) > 1) + 1)
        if len(runs) <= 2:
            found = [run for run in runs if ((values >= int(run[0])) & (values <= int(run[-1]))).any()]
            bad = values[(values >= int(found[-1][0])) & (values <= int(found[-1][-1]))] if found else invalid[:0]
        else:
            counts = np.bincount(values.ravel(), minlength=len(table))
            bad = np.flatnonzero((counts > 0) & (table == NOT_IN_CLASS_SET))
        if bad.size:
            raise DataError(f"label {path} has value {int(bad.max())}, outside the class set ({expected}); {fix}")
    # Most tables keep most values (SegNet: only void 11 -> 255; VOC: none): a copy plus a masked write per
    # changed value is ~4x faster than a lookup of every pixel (0.05 vs 0.2 ms per CamVid label).
    span = np.arange(low, high + 1)
    changed = span[(table[low:high + 1] != NOT_IN_CLASS_SET) & (table[low:high + 1] != span)]
    if len(changed) <= 4:
        labels = values.astype(np.uint8)
        for raw in changed.tolist():  # Python ints: comparing with a NumPy int64 would upcast every pixel
            labels[values == raw] = int(table[raw])
        return labels
    return np.take(table.clip(0).astype(np.uint8), values)


def colour_labels(img, path, colours: np.ndarray, colour_index: np.ndarray, *,
                  unknown_fix: str | None = None) -> np.ndarray:
    """Colour label -> class indices: each pixel's RGB looked up in ``colours`` [K,3] -> ``colour_index`` [K].

    Unknown colours are ignored (``unknown_fix`` None: CamVid has stray colours) or an error naming the fix.
    """
    rgb = np.asarray(img.convert("RGB")).astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    known = (np.asarray(colours).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1])).astype(np.int32)
    order = np.argsort(known)
    sorted_codes, sorted_index = known[order], np.asarray(colour_index)[order]
    slot = np.clip(np.searchsorted(sorted_codes, codes), 0, len(sorted_codes) - 1)
    found = sorted_codes[slot] == codes
    if unknown_fix is not None and not found.all():
        r, g, b = (int(v) for v in rgb[~found][0])
        raise DataError(f"label {path} has colour ({r}, {g}, {b}), outside the class set; {unknown_fix}")
    return np.where(found, sorted_index[slot], IGNORE_INDEX).astype(np.uint8)
