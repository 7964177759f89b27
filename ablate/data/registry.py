"""Dataset kinds a study can name in ``data={"kind": ...}``: where the folder comes from.

A kind is a function ``(spec, *, data, workdir) -> Path`` returning the dataset root:
``spec`` is the study's ``data`` dict, ``data`` the user's ``--data`` (or None), ``workdir``
a folder the kind may write into (the run directory). How the folder is then read is its
*layout* (``ablate.data.layouts``: detected, or ``data={"layout": "cityscapes"}``), a separate
question. To add a source, register a function here (or in your own module) returning a folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ablate.errors import StudyError

_DATASETS: dict = {}


def register_dataset(kind: str):
    """Decorator: ``@register_dataset("camvid")`` makes ``data={"kind": "camvid"}`` resolvable."""

    def wrap(fn):
        _DATASETS[kind] = fn
        return fn

    return wrap


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def dataset_root(spec: dict, *, data: str | None = None, workdir: Path) -> Path:
    """The root folder of the study's dataset; StudyError naming the known kinds for an unknown one."""
    kind = spec.get("kind")
    if kind not in _DATASETS:
        raise StudyError(f"data.kind: expected one of {', '.join(list_datasets())}, got {kind!r}")
    return Path(_DATASETS[kind](spec, data=data, workdir=Path(workdir)))


def dataset_layout(spec: dict, *, data: str | None = None, workdir: Path, layout: str | None = None,
                   grouped: bool = True):
    """The study's dataset opened: its root (``dataset_root``) read by ``layout``, else ``spec["layout"]``,
    else the detected layout."""
    from ablate.data.layouts import detect_layout

    root = dataset_root(spec, data=data, workdir=workdir)
    return detect_layout(root, layout=layout or spec.get("layout"), grouped=grouped)


@register_dataset("folder")
def folder(spec: dict, *, data: str | None, workdir: Path) -> Path:
    """A local folder of any layout: --data, else ``data={"root": ...}``, else $ABLATE_DATA (never a download)."""
    from ablate.errors import DataError

    root = data or spec.get("root") or os.environ.get("ABLATE_DATA")
    if not root:
        raise DataError("no dataset folder given; pass --data PATH (or set data={'kind': 'folder', 'root': PATH} "
                        "in the study, or $ABLATE_DATA)")
    return Path(root).expanduser()


@register_dataset("camvid")
def camvid(spec: dict, *, data: str | None, workdir: Path) -> Path:
    """CamVid from --data, $ABLATE_DATA or the download cache (``resolve_data_root``)."""
    from ablate.data.download import resolve_data_root

    return resolve_data_root(data)


@register_dataset("synthetic")
def synthetic(spec: dict, *, data: str | None, workdir: Path) -> Path:
    """Synthetic scenes generated once per run directory; built aside and renamed so workers never clash."""
    from ablate.data.synthetic import make_synthetic

    root = workdir / "data"
    if root.is_dir():
        return _dataset_in(root)
    opts = {k: (tuple(v) if k == "size" else v) for k, v in spec.items() if k not in ("kind", "layout")}
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".data-"))
        make_synthetic(tmp, **opts)
    except BaseException as exc:  # a half-written dataset is never left behind (nor used by a rerun)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        from ablate.rundir import is_disk_full

        if isinstance(exc, Exception) and is_disk_full(exc):
            from ablate.errors import DiskFullError

            raise DiskFullError(f"disk full while writing the synthetic dataset under {root.parent}; free space "
                                f"there and run the same command again") from None
        raise
    try:
        os.rename(tmp, root)
    except OSError:  # another worker got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return _dataset_in(root)


def _dataset_in(root: Path) -> Path:
    """make_synthetic may write into a subfolder: the dataset is where train/ lives."""
    if (root / "train").is_dir():
        return root
    found = sorted(p.parent for p in root.rglob("train") if p.is_dir())
    return found[0] if found else root
