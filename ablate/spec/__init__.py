"""What a study states, torch-free: the study spec (``study``) and its claims (``claims``).

Study files import from here: ``from ablate.spec import Claim, Study, Variant``.
"""

from ablate.spec.claims import Claim, ClaimError, as_claim, format_claim, parse_claim, validate_claim
from ablate.spec.study import PRESETS, Study, Variant, load_study

__all__ = ["PRESETS", "Claim", "ClaimError", "Study", "Variant", "as_claim", "format_claim", "load_study",
           "parse_claim", "validate_claim"]
