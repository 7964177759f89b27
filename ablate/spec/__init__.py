"""What a study states: its claims (and, in time, the study spec itself). Torch-free."""

from ablate.spec.claims import Claim, ClaimError, as_claim, format_claim, parse_claim, validate_claim

__all__ = ["Claim", "ClaimError", "as_claim", "format_claim", "parse_claim", "validate_claim"]
