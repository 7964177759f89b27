"""Dataset layouts: how a folder is read (``Layout``, one file each), registered by name.

``detect_layout(root)`` finds which registered layout a folder has (``layout=`` forces one);
``@register_layout("name")`` on a ``Layout`` subclass adds one, from any module or study file.
"""

from ablate.data.layouts.base import SPLITS, Layout, Pair, colour_labels, index_labels, value_table
from ablate.data.layouts.files import IMAGE_SUFFIXES
from ablate.data.layouts.registry import detect_layout, layout_class, list_layouts, register_layout

# The shipped layouts register on import, in the order detection tries them (and errors list them).
from ablate.data.layouts import camvid_segnet, camvid_class_dict, camvid_label_colors  # noqa: E402, F401, I001
from ablate.data.layouts import cityscapes, ade20k, voc, generic  # noqa: E402, F401, I001

__all__ = ["IMAGE_SUFFIXES", "SPLITS", "Layout", "Pair", "colour_labels", "detect_layout", "index_labels",
           "layout_class", "list_layouts", "register_layout", "value_table"]
