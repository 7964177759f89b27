"""Synthetic street-like scenes in the SegNet layout, for tests and smoke runs.

Each scene: sky above a horizon, buildings of varying height, trees, a fence, pavement and road,
cars, pedestrians, a bicyclist, thin poles with signs, and a few void patches. Every class has its
own colour and texture (plus noise and per-scene lighting), so a model can learn the mapping, and
boundaries/thin structures make the task non-trivial.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ablate.data.layouts.camvid_segnet import SegNetLayout

VOID = SegNetLayout.ignore_value  # the label value the SegNet layout leaves unlabelled

# Mean RGB per class index (SegNet order), void last; textures are added on top.
_COLOURS = np.array([
    (128, 170, 230), (140, 90, 70), (200, 200, 60), (90, 90, 95), (170, 150, 120), (50, 130, 40),
    (230, 50, 50), (150, 120, 40), (30, 60, 170), (220, 120, 170), (240, 140, 20), (0, 0, 0),
], dtype=np.float32)  # fmt: skip


def _scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    lab = np.zeros((height, width), np.uint8)  # sky
    rows, cols = np.mgrid[0:height, 0:width]
    ground = int(height * rng.uniform(0.55, 0.65))
    kerb = ground + max(2, int(height * 0.08))
    x = 0
    while x < width:  # buildings, side by side, different heights
        w = int(width * rng.uniform(0.12, 0.3))
        top = int(height * rng.uniform(0.1, 0.45))
        lab[top:ground, x : x + w] = 1
        x += w + int(width * rng.uniform(0.0, 0.08))
    for _ in range(rng.integers(1, 4)):  # trees: ellipses in front of buildings
        cy, cx = rng.uniform(0.3, 0.5) * height, rng.uniform(0, width)
        ry, rx = rng.uniform(0.08, 0.18) * height, rng.uniform(0.05, 0.12) * width
        lab[((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 < 1] = 5
    f0 = int(rng.uniform(0, 0.5) * width)  # fence along the ground line
    lab[ground - max(2, height // 12) : ground, f0 : f0 + int(width * rng.uniform(0.2, 0.4))] = 7
    lab[ground:kerb] = 4
    lab[kerb:] = 3
    for _ in range(rng.integers(1, 3)):  # cars on the road
        cw, ch = int(width * rng.uniform(0.12, 0.22)), int(height * rng.uniform(0.08, 0.14))
        cx, cy = rng.integers(0, width - cw), rng.integers(kerb - ch // 2, height - ch)
        lab[cy : cy + ch, cx : cx + cw] = 8
    for _ in range(rng.integers(1, 3)):  # pedestrians: tall thin boxes on the pavement
        pw, ph = max(2, width // 40), int(height * rng.uniform(0.12, 0.2))
        px = rng.integers(0, width - pw)
        lab[kerb - ph : kerb, px : px + pw] = 9
    bw, bh = max(3, width // 25), int(height * 0.1)  # a bicyclist on the road
    bx, by = rng.integers(0, width - bw), rng.integers(kerb, height - bh)
    lab[by : by + bh, bx : bx + bw] = 10
    for _ in range(rng.integers(1, 4)):  # poles (1-2 px wide) with a sign on top
        px, pw = rng.integers(1, width - 3), int(rng.integers(1, 3))
        top = int(height * rng.uniform(0.15, 0.35))
        lab[top:kerb, px : px + pw] = 2
        s = max(3, height // 16)
        lab[top : top + s, max(0, px - s // 2) : px + s // 2 + pw] = 6
    for _ in range(rng.integers(1, 4)):  # void: unlabelled patches
        vh, vw = rng.integers(2, max(3, height // 10)), rng.integers(2, max(3, width // 10))
        vy, vx = rng.integers(0, height - vh), rng.integers(0, width - vw)
        lab[vy : vy + vh, vx : vx + vw] = VOID
    return _paint(rng, lab, rows, cols), lab


def _paint(rng, lab, rows, cols) -> np.ndarray:
    img = _COLOURS[lab].copy()
    texture = {  # class-specific patterns, so colour alone is not the only cue
        1: 25.0 * (((rows // 4) % 3 == 0) & ((cols // 3) % 2 == 0)),  # windows
        3: 30.0 * ((rows % 7 == 0) & ((cols // 6) % 2 == 0)),  # lane markings
        5: rng.normal(0, 25, lab.shape),  # foliage
        7: 30.0 * (cols % 3 == 0),  # fence slats
    }
    for cls, pattern in texture.items():
        img[lab == cls] += np.asarray(pattern, np.float32)[lab == cls, None]
    void = lab == VOID
    img[void] = rng.uniform(0, 255, (int(void.sum()), 3))
    img *= rng.uniform(0.75, 1.2)  # per-scene lighting
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_synthetic(
    root,
    *,
    n_train: int = 24,
    n_val: int = 8,
    n_test: int = 8,
    size=(96, 128),
    seed: int = 0,
    prefix: str = "/SegNet/CamVid",
) -> Path:
    """Write a SegNet-layout dataset of synthetic scenes (size=(H, W)) under root; return root.

    Deterministic given the arguments. List files carry a foreign `prefix`, as SegNet's do.
    """
    root = Path(root)
    height, width = int(size[0]), int(size[1])
    if height < 16 or width < 16:
        raise ValueError("synthetic scenes need size >= 16x16")
    for split_id, (split, count) in enumerate((("train", n_train), ("val", n_val), ("test", n_test))):
        if count <= 0:
            continue
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(count):
            rng = np.random.default_rng([seed, split_id, i])
            image, label = _scene(rng, height, width)
            name = f"synth{split_id}_{i:05d}.png"
            Image.fromarray(image).save(root / split / name, compress_level=1)
            Image.fromarray(label).save(root / f"{split}annot" / name, compress_level=1)
            lines.append(f"{prefix}/{split}/{name} {prefix}/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root
