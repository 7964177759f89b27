"""The sections of verdicts.json besides the verdicts, one module each: ``comparisons``, ``variants`` (and the
environment), ``test_set``, ``latency``, ``power_curves``, ``budgets``, ``accuracy_cost``. Each returns what can be
computed from what the orchestrator passes in and appends to ``warnings`` for the rest (analyze must always produce a
valid verdicts.json); they never import the orchestrator."""
