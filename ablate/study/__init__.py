"""What a study states, torch-free: the study spec (``definition``) and its claims (``claim``).

Study files import from here: ``from ablate.study import Claim, Study, Variant``.
"""

from ablate.study.claim import Claim, ClaimError, as_claim, format_claim, parse_claim, validate_claim
from ablate.study.definition import PRESETS, Study, Variant, load_study

__all__ = ["PRESETS", "Claim", "ClaimError", "Study", "Variant", "as_claim", "format_claim", "load_study",
           "parse_claim", "validate_claim"]
