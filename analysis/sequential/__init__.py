"""Sequential design: the group-sequential rule the ``--until-settled`` sweep stops on.

``design`` (the design and its looks), ``boundaries`` (alpha spending and t boundaries), ``simulation``
(vectorised copies for planning and the error-rate tests): estimators, numpy/scipy only. ``gate`` (the
sweep's stopping gate and looks.json) sits a layer higher, beside the report sections and planning.
``analysis.sequential`` is the design's public face: its names are re-exported here.
"""

from analysis.sequential.design import (  # noqa: F401
    METHOD,
    SETTLED,
    SPENDING,
    SPENDING_NAMES,
    T_METHOD_TEXT,
    T_METHODS,
    HypothesisLooks,
    Look,
    SequentialDesign,
    classical_constant,
    combine_hypothesis,
    crossing_probabilities,
    decide_sequence,
    estimate_look,
    hypothesis_looks,
    look_decision,
    operating_characteristics,
    simulate_fixed_retest,
    simulate_hypothesis,
    simulate_sequential,
    spending,
    spending_bounds,
    t_bounds,
)
