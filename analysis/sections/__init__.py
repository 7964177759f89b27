"""The sections of verdicts.json besides the verdicts: ``summary`` (comparisons, variants, test set, latency,
power curves, environment) and ``budgets`` (the verdict per training budget). Computed from what the
orchestrator passes in; they never import it."""
