"""Verdict rules: ``records`` (ClaimVerdict / HypothesisVerdict, verdicts.json's schema) and ``rules``
(estimate -> claim verdict -> hypothesis verdict). They call the estimators, never a section or the orchestrator."""
