"""On-disk cache of decoded splits, keyed by the layout, its class mapping and the content of the split's files.

The key hashes every image and label file's bytes (not size+mtime): copying or re-extracting a
dataset keeps its cache valid, an edited file invalidates it, and reading ~120 MB of CamVid
train+val PNGs costs well under a second next to several seconds of decoding. The layout's name and
``mapping_key`` (class set, value or colour table) are in the key too: the same files read by two
layouts, or through two class mappings, decode to different labels and never share an entry.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from ablate.data.layouts import Layout, Pair

CACHE_VERSION = 2  # bump when decoding or resizing changes, so old caches are not reused


def default_cache_dir() -> Path:
    return Path(os.environ.get("ABLATE_CACHE") or Path.home() / ".cache" / "ablate").expanduser()


def split_key(layout: Layout, split: str, pairs: list[Pair], size) -> str:
    digest = hashlib.sha1()
    header = (CACHE_VERSION, layout.name, split, tuple(size))
    digest.update(repr(header).encode() + b"\0" + layout.mapping_key() + b"\0")
    for pair in pairs:
        for path in (pair.image, pair.label):
            digest.update(pair.name.encode() + b"\0")
            digest.update(_file_sha1(path))
    return digest.hexdigest()


def _file_sha1(path) -> bytes:
    # hashlib.file_digest needs Python 3.11; the package supports 3.10.
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def cache_path(cache_dir, layout: Layout, split: str, size, key: str) -> Path:
    return Path(cache_dir) / "splits" / f"{layout.name}-{split}-{size[0]}x{size[1]}-{key[:20]}.pt"


def load_cached(path: Path) -> dict | None:
    import torch

    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception:  # a damaged cache file is rebuilt, never an error
        return None


def save_cached(path: Path, payload: dict) -> None:
    """Write atomically (``ablate.rundir.write_atomic_bytes``); a cache that cannot be written only costs a warning."""
    import io

    import torch

    from ablate.rundir import write_atomic_bytes

    buf = io.BytesIO()
    torch.save(payload, buf)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic_bytes(path, buf.getvalue())
    except OSError as exc:
        warnings.warn(
            f"could not write the data cache {path} ({exc}); set $ABLATE_CACHE to a writable folder",
            stacklevel=3,
        )
