"""Planning a study from a pilot (``ablate plan``): ``plan``. The pilot's test-set part comes from the
orchestrator's ``analyze``, passed in by ``analysis.plan_study``; planning never imports the orchestrator."""
