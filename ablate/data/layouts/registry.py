"""Layouts registered by name (``@register_layout("name")``), detection and forcing.

A plain name -> class registry: a layout defined in a study file or a module beside it registers
when that file is imported, and is then found like a shipped one.
"""

from __future__ import annotations

from pathlib import Path

from ablate.data.layouts.base import Layout
from ablate.errors import DataError

_LAYOUTS: dict[str, type[Layout]] = {}


def register_layout(name: str):
    """Class decorator: ``@register_layout("cityscapes")`` makes ``--layout cityscapes`` and detection use it."""

    def wrap(cls):
        if not (isinstance(cls, type) and issubclass(cls, Layout)):
            raise TypeError(f"register_layout({name!r}) decorates a subclass of ablate.data.layouts.Layout")
        cls.name = name
        _LAYOUTS[name] = cls
        return cls

    return wrap


def list_layouts() -> list[str]:
    return sorted(_LAYOUTS)


def layout_class(name: str) -> type[Layout]:
    if name not in _LAYOUTS:
        raise DataError(f"unknown layout {name!r}; registered layouts: {', '.join(list_layouts())}")
    return _LAYOUTS[name]


def _expected() -> str:
    ordered = sorted(_LAYOUTS.values(), key=lambda c: c.detect_order)
    return "; ".join(f"{c.name} ({c.folder})" for c in ordered)


def detect_layout(root, *, layout: str | None = None, grouped: bool = True) -> Layout:
    """The layout of ``root``: ``layout`` when named (forced), else the first registered one whose ``find``
    accepts the folder; a DataError listing the registered layouts when none does."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; pass --data PATH to a dataset folder "
                        "(or run `ablate data download` for CamVid)")
    if layout is not None:
        cls = layout_class(layout)
        found = cls.find(root)
        if found is None:
            raise DataError(f"{root} does not look like the {layout} layout: expected {cls.folder}")
        return cls(found, grouped=grouped)
    for cls in sorted(_LAYOUTS.values(), key=lambda c: c.detect_order):
        found = cls.find(root)
        if found is not None:
            return cls(found, grouped=grouped)
    raise DataError(f"unknown dataset layout in {root}: expected one of the registered layouts: {_expected()}; "
                    "or pass --layout NAME")
