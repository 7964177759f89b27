"""Dataset layouts: how a folder is read (``Layout``, one file each), registered by name.

``detect_layout(root)`` finds which registered layout a folder has (``layout=`` forces one);
``@register_layout("name")`` on a ``Layout`` subclass adds one, from any module or study file.
"""

# The shipped layouts register on import (each class's detect_order says when detection tries it).
from ablate.data.layouts import (  # noqa: F401  # noqa: F401
           ade20k,
           camvid_class_dict,
           camvid_label_colors,
           camvid_segnet,
           cityscapes,
           generic,
           voc,
)
from ablate.data.layouts.base import SPLITS, Layout, Pair, colour_labels, index_labels, value_table
from ablate.data.layouts.files import IMAGE_SUFFIXES
from ablate.data.layouts.registry import detect_layout, layout_class, list_layouts, register_layout

__all__ = ["IMAGE_SUFFIXES", "SPLITS", "Layout", "Pair", "colour_labels", "detect_layout", "index_labels",
           "layout_class", "list_layouts", "register_layout", "value_table"]
