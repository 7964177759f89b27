"""Datasets: the registry of kinds (camvid, synthetic), CamVid layouts, synthetic scenes, a decode-once
cache, seeded batches and download."""

from ablate.data.batches import BatchIterator
from ablate.data.check import check_dataset
from ablate.data.classes import CAMVID_CLASSES, IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from ablate.data.dataset import SegData, find_splits, load_split
from ablate.data.download import DEFAULT_URL, download_camvid, resolve_data_root
from ablate.data.registry import dataset_root, list_datasets, register_dataset
from ablate.data.synthetic import make_synthetic

__all__ = [
    "BatchIterator",
    "CAMVID_CLASSES",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DEFAULT_URL",
    "SegData",
    "check_dataset",
    "dataset_root",
    "download_camvid",
    "find_splits",
    "list_datasets",
    "load_split",
    "make_synthetic",
    "register_dataset",
    "resolve_data_root",
]
