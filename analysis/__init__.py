"""Statistics and reporting over a run directory's tables; never imports torch.

Layers, each importing only its own layer and those below it (``tests/test_layout.py`` checks it;
``python tests/test_layout.py`` prints the import graph between them):

1. ``run_reader``      reading the run directory (the one seed filter, the one latency-setting rule)
2. ``estimators``      the effect estimate, its interval and tests; the verdict rule's power;
   ``sequential``      the group-sequential design (``design``, ``boundaries``, ``simulation``)
3. ``verdicts``        verdict rules (``rules``) and their records (``records``, verdicts.json's schema)
4. ``sections``        the other verdicts.json sections, one module each; ``planning`` (``ablate plan``);
   ``sequential.gate`` the ``--until-settled`` sweep's gate and looks.json
5. ``report``, ``plots`` rendering (below the orchestrator: ``analyze(write=True)`` writes the report)
6. ``orchestrator``    ``analyze`` and the composition that needs it (``analyze_budgets``)
7. ``cli``             ``ablate analyze``

The public names are re-exported here.
"""

from analysis.orchestrator import analyze, analyze_budgets

__all__ = ["analyze", "analyze_budgets", "plan_study", "SeedGate"]


def __getattr__(name):
    # SeedGate (the --until-settled gate, on analyze's own estimator) is public so that a run directory's looks
    # can be recomputed from outside: ``analysis.SeedGate(claims, baseline, seeds, max_seeds=...).evaluate(run_dir)``.
    # Imported lazily: ``import analysis`` stays light.
    if name == "SeedGate":
        from analysis.sequential.gate import SeedGate

        return SeedGate
    if name == "plan_study":  # ``ablate plan``: planning a study from a pilot run
        from analysis.planning.plan import plan_study

        return plan_study
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
