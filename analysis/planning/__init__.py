"""Planning a study from a pilot (``ablate plan``): ``plan``. The pilot is judged by the verdict rules themselves
(``analysis.verdicts.rules.evaluate``); planning never imports the orchestrator."""
