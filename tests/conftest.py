"""Shared fixtures. Tests keep torch to one thread: the suite runs on 2 cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # analysis-only environments
        pass


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """Real CamVid (SegNet layout) from $ABLATE_CAMVID; skips when unset."""
    root = os.environ.get("ABLATE_CAMVID")
    if not root:
        pytest.skip("set ABLATE_CAMVID to a CamVid folder (e.g. ../shared/camvid) to run")
    path = Path(root)
    if not path.is_dir():
        pytest.skip(f"ABLATE_CAMVID={root} is not a directory")
    return path


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic SegNet-layout dataset (train/val/test), made once per session."""
    from ablate.data import make_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    return make_synthetic(root, n_train=12, n_val=6, n_test=6, size=(64, 80), seed=0)
