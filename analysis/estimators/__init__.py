"""Estimators and tests: ``effects`` (the one effect estimate and its interval, paired tests, Holm),
``verdict_power`` (the verdict rule's own power). Below the verdict rules; they import no analysis layer above."""
