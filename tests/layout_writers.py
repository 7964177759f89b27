"""Small synthetic copies of each shipped layout, written by the tests (no downloads).

Each copy holds the synthetic street scenes (``ablate.data.synthetic``) at a few odd sizes, saved the
way the real dataset saves them (JPEG or PNG images; index, palette or colour masks), with the scene's
CamVid classes mapped to the dataset's own label values. ``expected`` of each writer gives, per CamVid
class (and void), the class index ablate must decode (255 = ignored).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from ablate.data.layouts.ade20k import ADE20K_CLASSES
from ablate.data.layouts.camvid import CAMVID_CLASSES, SEGNET_VOID
from ablate.data.layouts.cityscapes import TRAIN_CLASSES
from ablate.data.layouts.voc import VOC_CLASSES, voc_palette
from ablate.data.synthetic import _scene

SIZES = ((37, 53), (41, 60), (45, 47))  # (H, W): odd and different per image
IGNORED = 255


def scene_number(name: str) -> int:
    """Every writer ends a pair's name with its scene number."""
    return int(re.findall(r"\d+", name)[-1]) % 10000


def scenes(split_id: int, n: int, *, seed: int = 0, sizes=SIZES):
    """n (image uint8 [H,W,3], CamVid label uint8 [H,W]) at the given sizes in turn."""
    for i in range(n):
        height, width = sizes[i % len(sizes)]
        yield _scene(np.random.default_rng([seed, split_id, i]), height, width)


def _remap(label: np.ndarray, raw: dict[str, int], void: int) -> np.ndarray:
    table = np.full(256, void, np.int64)
    for index, name in enumerate(CAMVID_CLASSES):
        table[index] = raw[name]
    table[SEGNET_VOID] = void
    return table[label]


# --- Cityscapes: CamVid classes as labelIds --------------------------------------------------------
CITYSCAPES_IDS = {"Sky": 23, "Building": 11, "Pole": 17, "Road": 7, "Pavement": 8, "Tree": 21, "SignSymbol": 20,
                  "Fence": 13, "Car": 26, "Pedestrian": 24, "Bicyclist": 33}  # fmt: skip


def cityscapes_expected() -> dict[str, int]:
    train_id = {label_id: i for i, (_, label_id, _) in enumerate(TRAIN_CLASSES)}
    return {**{n: train_id[CITYSCAPES_IDS[n]] for n in CAMVID_CLASSES}, "void": IGNORED}


def write_cityscapes(root, *, n_train=3, n_val=2, seed=0, sizes=SIZES) -> Path:
    root = Path(root)
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        for i, (image, label) in enumerate(scenes(split_id, n, seed=seed, sizes=sizes)):
            city = ("aachen", "bremen")[i % 2]
            ids = _remap(label, CITYSCAPES_IDS, void=0).astype(np.uint8)
            ids[0, 0] = 9  # parking: a labelId without a train id
            ids[0, 1] = 255  # the license plate (-1) as saved
            name = f"{city}_000000_{i:06d}"
            for top, suffix, array in (("leftImg8bit", "leftImg8bit", image), ("gtFine", "gtFine_labelIds", ids)):
                folder = root / top / split / city
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(folder / f"{name}_{suffix}.png")
    return root


# --- ADE20K: values 1-150, 0 ignored ---------------------------------------------------------------
ADE_NAMES = {"Sky": "sky", "Building": "building", "Pole": "pole", "Road": "road", "Pavement": "sidewalk",
             "Tree": "tree", "SignSymbol": "signboard", "Fence": "fence", "Car": "car", "Pedestrian": "person",
             "Bicyclist": "bicycle"}  # fmt: skip


def ade20k_expected() -> dict[str, int]:
    return {**{n: ADE20K_CLASSES.index(ADE_NAMES[n]) for n in CAMVID_CLASSES}, "void": IGNORED}


def write_ade20k(root, *, n_train=3, n_val=2, seed=0, sizes=SIZES) -> Path:
    base = Path(root) / "ADEChallengeData2016"
    raw = {n: ADE20K_CLASSES.index(ADE_NAMES[n]) + 1 for n in CAMVID_CLASSES}
    for split_id, (sub, n) in enumerate((("training", n_train), ("validation", n_val))):
        (base / "images" / sub).mkdir(parents=True, exist_ok=True)
        (base / "annotations" / sub).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(scenes(split_id, n, seed=seed, sizes=sizes)):
            name = f"ADE_{'train' if split_id == 0 else 'val'}_{i:08d}"
            Image.fromarray(image).save(base / "images" / sub / f"{name}.jpg", quality=95)
            Image.fromarray(_remap(label, raw, void=0).astype(np.uint8)).save(base / "annotations" / sub / f"{name}.png")
    return Path(root)


# --- Pascal VOC 2012: palette PNGs, 255 ignored ----------------------------------------------------
VOC_NAMES = {"Car": "car", "Pedestrian": "person", "Bicyclist": "bicycle"}  # everything else background


def voc_expected() -> dict[str, int]:
    return {**{n: VOC_CLASSES.index(VOC_NAMES.get(n, "background")) for n in CAMVID_CLASSES}, "void": IGNORED}


def write_voc(root, *, n_train=3, n_val=2, seed=0, sizes=SIZES) -> Path:
    base = Path(root) / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    raw = {n: VOC_CLASSES.index(VOC_NAMES.get(n, "background")) for n in CAMVID_CLASSES}
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(VOC_CLASSES)] = voc_palette(len(VOC_CLASSES))
    palette[255] = (224, 224, 192)  # VOC's border colour
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        names = []
        for i, (image, label) in enumerate(scenes(split_id, n, seed=seed, sizes=sizes)):
            name = f"2007_{split_id:02d}{i:04d}"
            Image.fromarray(image).save(base / "JPEGImages" / f"{name}.jpg", quality=95)
            mask = Image.fromarray(_remap(label, raw, void=255).astype(np.uint8), mode="L").convert("P")
            mask.putpalette(palette.ravel().tolist())
            mask.save(base / "SegmentationClass" / f"{name}.png")
            names.append(name)
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return Path(root)


# --- generic: images + masks + classes file --------------------------------------------------------
GENERIC_CLASSES = ("sky", "building", "road", "vegetation", "vehicle")
GENERIC_COLOURS = ((70, 130, 180), (70, 70, 70), (128, 64, 128), (107, 142, 35), (0, 0, 142))
GENERIC_OF = {"Sky": 0, "Building": 1, "Pole": 1, "Road": 2, "Pavement": 2, "Tree": 3, "SignSymbol": 1,
              "Fence": 1, "Car": 4, "Pedestrian": 4, "Bicyclist": 4}  # fmt: skip


def generic_expected() -> dict[str, int]:
    return {**GENERIC_OF, "void": IGNORED}


def write_generic(root, *, shape="split_dirs", classes="txt", colour=False, ignore=255, n_train=3, n_val=2,
                  seed=0, sizes=SIZES) -> Path:
    """shape: split_dirs (<split>/images), nested (images/<split>) or flat (images/ + <split>.txt);
    classes: txt or json; colour: RGB masks through the classes' colours (ignore colour black)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if classes == "txt":
        rows = [f"{n} {r} {g} {b}" if colour else n for n, (r, g, b) in zip(GENERIC_CLASSES, GENERIC_COLOURS)]
        (root / "classes.txt").write_text("# one class per line, in mask-value order\n" + "\n".join(rows) + "\n")
    else:
        entries = [{"name": n, "colour": list(c)} for n, c in zip(GENERIC_CLASSES, GENERIC_COLOURS)]
        (root / "classes.json").write_text(json.dumps({"classes": entries, "ignore": ignore,
                                                       "ignore_colour": [0, 0, 0]}))
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        images, masks = {"split_dirs": (root / split / "images", root / split / "masks"),
                         "nested": (root / "images" / split, root / "masks" / split),
                         "flat": (root / "images", root / "masks")}[shape]
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        names = []
        for i, (image, label) in enumerate(scenes(split_id, n, seed=seed, sizes=sizes)):
            name = f"{split}_{i:03d}"
            index = _remap(label, GENERIC_OF, void=ignore)
            if colour:
                table = np.array([*GENERIC_COLOURS, (0, 0, 0)], np.uint8)
                mask = Image.fromarray(table[np.where(index == ignore, len(GENERIC_COLOURS), index)])
            else:
                mask = Image.fromarray(index.astype(np.uint8))
            (Image.fromarray(image).save(images / f"{name}.jpg", quality=95) if i % 2 == 0
             else Image.fromarray(image).save(images / f"{name}.png"))
            mask.save(masks / f"{name}.png")
            names.append(f"{name}.jpg" if i % 2 == 0 else name)  # list files may name the file or the stem
        if shape == "flat":
            (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root
