"""CamVid's original release: LabeledApproved_full/<stem>_L.png + label_colors.txt ("R G B<tab>Name") + a
folder of frames; split by list files, else by video sequence; grouped to SegNet's 11 classes by default."""

from __future__ import annotations

from pathlib import Path

from ablate.data.layouts.base import SPLITS, Layout, Pair, colour_labels, raise_unmatched
from ablate.data.layouts.camvid import colour_classes, display_colours
from ablate.data.layouts.files import images_in
from ablate.data.layouts.registry import register_layout
from ablate.errors import DataError

# Without list files the frames are split by CamVid video sequence (no frame of one sequence leaks
# into another split): Seq05VD -> test, 0006R0 -> val, the rest -> train.
SEQUENCE_SPLIT = {"Seq05VD": "test", "0006R0": "val"}
LABELS = "LabeledApproved_full"


@register_layout("label_colors")
class LabelColorsLayout(Layout):
    folder = f"{LABELS}/ with label_colors.txt and a frames folder (CamVid, 32 colour classes)"
    detect_order = 12
    ignore_value = "Void and colours not in label_colors.txt"

    def __init__(self, root, *, grouped: bool = True):
        super().__init__(root)
        colours_file = self.root / "label_colors.txt"
        if not colours_file.is_file():
            raise DataError(f"{colours_file} is missing; it names each label colour ('R G B<tab>Name')")
        entries = read_label_colors(colours_file)
        self.class_names, self.file_colours, self.colour_index = colour_classes(entries, grouped=grouped)
        self.colours = display_colours(self.class_names, self.file_colours, self.colour_index)

    @classmethod
    def find(cls, root: Path) -> Path | None:
        for base in (root, root / "CamVid"):
            if (base / LABELS).is_dir():
                return base
        return None

    def splits(self) -> list[str]:
        return [s for s in SPLITS if self._pairs(s)]

    def pairs(self, split: str) -> list[Pair]:
        self.check_split(split)
        pairs = self._pairs(split)
        if not pairs:
            raise DataError(f"split {split!r} has no labelled frames in {self.root}; add {split}.txt listing its images")
        return pairs

    def label_indices(self, img, path):
        return colour_labels(img, path, self.file_colours, self.colour_index)  # CamVid has stray colours: ignored

    def mapping_key(self) -> bytes:
        return super().mapping_key() + self.file_colours.tobytes() + self.colour_index.tobytes()

    def _image_dir(self, stems: set[str]) -> Path:
        # The raw frames usually live in 701_StillsRaw_full/; accept any folder whose files match the labels.
        best, best_hits = None, 0
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name != LABELS):
            hits = len(stems & set(images_in(folder)))
            if hits > best_hits:
                best, best_hits = folder, hits
        if best is None:
            raise DataError(f"no image folder in {self.root} matches {LABELS}/*_L.png; "
                            "add the frames (e.g. 701_StillsRaw_full/)")
        return best

    def _pairs(self, split: str) -> list[Pair]:
        label_dir = self.root / LABELS
        labels = images_in(label_dir, strip="_L")
        image_dir = self._image_dir(set(labels))
        images = images_in(image_dir)
        list_file = self.root / f"{split}.txt"
        if list_file.is_file():
            wanted = set()
            for line in list_file.read_text().splitlines():
                if line.strip():
                    stem = Path(line.split()[0].replace("\\", "/")).stem
                    wanted.add(stem[:-2] if stem.endswith("_L") else stem)
        elif any((self.root / f"{s}.txt").is_file() for s in SPLITS):
            return []
        else:
            wanted = {stem for stem in labels if SEQUENCE_SPLIT.get(stem.split("_")[0], "train") == split}
        pairs, problems = [], []
        for stem in sorted(wanted):
            if stem not in labels:
                problems.append(f"{list_file if list_file.is_file() else image_dir}: frame {stem} has no label "
                                f"{label_dir / (stem + '_L.png')}; add it or drop the frame")
            elif stem not in images:
                problems.append(f"label {labels[stem]} has no image in {image_dir}; add the image or remove the label")
            else:
                pairs.append(Pair(stem, images[stem], labels[stem]))
        raise_unmatched(problems, pairs)
        return pairs


def read_label_colors(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
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
