"""ablate: hypothesis testing for ablation studies of segmentation decoders.

Importing this package must stay light (no torch): ``analysis`` imports
``ablate.errors`` and must never pull torch in.
"""

__version__ = "0.1.0"
