"""Pairing images with labels by file name, the part most layouts share."""

from __future__ import annotations

from pathlib import Path

from ablate.data.layouts.base import Pair, raise_unmatched
from ablate.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def images_in(folder: Path, *, strip: str = "") -> dict[str, Path]:
    """{stem: path} of the image files in ``folder`` (``strip``: a suffix of the stem to drop, e.g. "_L")."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            stem = path.stem[: -len(strip)] if strip and path.stem.endswith(strip) else path.stem
            out[stem] = path
    return out


def stem_pairs(image_dir: Path, label_dir: Path, *, label_strip: str = "", label_hint: str = "{stem}.png"
               ) -> list[Pair]:
    """Pair ``image_dir``'s images with ``label_dir``'s labels of the same stem; a missing partner is an error."""
    images = images_in(image_dir)
    labels = images_in(label_dir, strip=label_strip)
    problems = [f"image {path} has no label in {label_dir}; add {label_hint.format(stem=stem)} or remove the image"
                for stem, path in images.items() if stem not in labels]
    problems += [f"label {path} has no image in {image_dir}; add the image or remove the label"
                 for stem, path in labels.items() if stem not in images]
    pairs = [Pair(stem, images[stem], labels[stem]) for stem in sorted(images) if stem in labels]
    raise_unmatched(problems, pairs)
    return pairs


def listed_pairs(list_file: Path, image_dir: Path, label_dir: Path) -> list[Pair]:
    """Lines "image [label]", possibly with a foreign prefix (/SegNet/CamVid/train/x.png): matched by file name."""
    pairs, problems = [], []
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        image = image_dir / Path(fields[0].replace("\\", "/")).name
        label = label_dir / Path(fields[-1].replace("\\", "/")).name
        if not image.is_file():
            problems.append(f"{list_file}:{number} lists {image.name} but {image} is missing; "
                            "add the image or remove the line")
        elif not label.is_file():
            problems.append(f"image {image} has no label: {label} (listed in {list_file}:{number}) is missing; "
                            "add the label or remove the line")
        else:
            pairs.append(Pair(image.stem, image, label))
    raise_unmatched(problems, pairs)
    return sorted(pairs, key=lambda p: p.name)


def folder_pairs(root: Path, split: str, image_dir: Path, label_dir: Path, *, found: list[str],
                 list_file: Path | None = None, label_strip: str = "", label_hint: str = "{stem}.png") -> list[Pair]:
    """One split kept as an image folder beside a label folder (optionally with a list file naming its images)."""
    if not image_dir.is_dir() and not label_dir.is_dir():
        raise DataError(f"split {split!r} not found in {root} (found: {', '.join(found) or 'none'}); "
                        f"expected {image_dir.relative_to(root)}/ and {label_dir.relative_to(root)}/")
    for folder, partner in ((image_dir, label_dir), (label_dir, image_dir)):
        if not folder.is_dir():
            raise DataError(f"{folder} is missing but {partner.name}/ exists; add the folder or remove "
                            f"{partner.name}/")
    if list_file is not None and list_file.is_file():
        pairs = listed_pairs(list_file, image_dir, label_dir)
    else:
        pairs = stem_pairs(image_dir, label_dir, label_strip=label_strip, label_hint=label_hint)
    if not pairs:
        raise DataError(f"split {split!r} is empty: no images in {image_dir}; add images or remove the folder")
    return pairs
