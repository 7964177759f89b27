"""CamVid's class sets: SegNet's 11 classes (void 11) and the grouping of the 32 colour classes into them.

Only the CamVid layouts (and the synthetic scenes and download, which write and verify the SegNet
layout) use these; every other part of ablate takes its classes from the dataset's layout.
"""

from __future__ import annotations

import numpy as np

from ablate.data.classes import IGNORE_INDEX

# The SegNet 11-class CamVid order (label value = position); void (11) is ignored.
CAMVID_CLASSES: tuple[str, ...] = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)  # fmt: skip
SEGNET_VOID = 11

# SegNet's grouping of the 32 CamVid colour classes into its 11; anything else (Void) is ignored.
CAMVID_GROUPS: dict[str, tuple[str, ...]] = {
    "Sky": ("Sky",),
    "Building": ("Building", "Wall", "Bridge", "Tunnel", "Archway"),
    "Pole": ("Column_Pole", "TrafficCone"),
    "Road": ("Road", "LaneMkgsDriv", "LaneMkgsNonDriv"),
    "Pavement": ("Sidewalk", "ParkingBlock", "RoadShoulder"),
    "Tree": ("Tree", "VegetationMisc"),
    "SignSymbol": ("SignSymbol", "Misc_Text", "TrafficLight"),
    "Fence": ("Fence",),
    "Car": ("Car", "SUVPickupTruck", "Truck_Bus", "Train", "OtherMoving"),
    "Pedestrian": ("Pedestrian", "Child", "CartLuggagePram", "Animal"),
    "Bicyclist": ("Bicyclist", "MotorcycleScooter"),
}


def _key(name: str) -> str:
    # Files spell names differently ("Column_Pole", "column pole"): compare loosely.
    return "".join(ch for ch in name.lower() if ch.isalnum())


_GROUP_OF = {
    _key(member): CAMVID_CLASSES.index(group)
    for group, members in CAMVID_GROUPS.items()
    for member in members
}


def colour_classes(
    entries: list[tuple[str, tuple[int, int, int]]], *, grouped: bool
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Class names, colours [K,3] and each colour's class index (IGNORE_INDEX for void/unmapped).

    Order (documented, independent of the file's row order): grouped -> CAMVID_CLASSES;
    ungrouped -> the file's class names sorted case-insensitively, "Void" left out (ignored).
    """
    colours = np.array([rgb for _, rgb in entries], dtype=np.uint8).reshape(-1, 3)
    if grouped:
        index = [_GROUP_OF.get(_key(name), IGNORE_INDEX) for name, _ in entries]
        return CAMVID_CLASSES, colours, np.array(index, dtype=np.uint8)
    names = sorted({name for name, _ in entries if _key(name) != "void"}, key=str.lower)
    position = {name: i for i, name in enumerate(names)}
    index = [position.get(name, IGNORE_INDEX) for name, _ in entries]
    return tuple(names), colours, np.array(index, dtype=np.uint8)


def display_colours(names, colours: np.ndarray, colour_index: np.ndarray) -> np.ndarray:
    """One display colour per class: the first file colour mapped to it."""
    out = np.zeros((len(names), 3), np.uint8)
    for rgb, index in zip(colours[::-1], colour_index[::-1]):
        if index != IGNORE_INDEX:
            out[index] = rgb
    return out
