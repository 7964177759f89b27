"""``python -m analysis.sequential``: the design's error rates and expected seeds."""

from analysis.sequential.design import main

main()
