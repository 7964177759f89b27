"""The ignore index and the normalisation constants every dataset shares.

No torch here: `ablate data check` and the layout readers only need numpy. Class sets belong to
the layouts (``ablate.data.layouts``).
"""

from __future__ import annotations

# Label value no loss or metric counts, after each layout's own values are mapped to class indices.
IGNORE_INDEX = 255

# Same values as Hugging Face's SegformerImageProcessor and timm's ResNet34 defaults.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
