"""Datasets: kinds (where a folder comes from: camvid, folder, synthetic), layouts (how a folder is read:
``ablate.data.layouts``), synthetic scenes, a decode-once cache, seeded batches and download."""

from ablate.data.batches import BatchIterator
from ablate.data.check import check_dataset
from ablate.data.classes import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from ablate.data.dataset import SegData, find_splits, load_split
from ablate.data.download import DEFAULT_URL, download_camvid, resolve_data_root
from ablate.data.layouts import Layout, detect_layout, list_layouts, register_layout
from ablate.data.registry import dataset_layout, dataset_root, list_datasets, register_dataset
from ablate.data.synthetic import make_synthetic

__all__ = [
    "BatchIterator",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DEFAULT_URL",
    "Layout",
    "SegData",
    "check_dataset",
    "dataset_layout",
    "dataset_root",
    "detect_layout",
    "download_camvid",
    "find_splits",
    "list_datasets",
    "list_layouts",
    "load_split",
    "make_synthetic",
    "register_dataset",
    "register_layout",
    "resolve_data_root",
]
