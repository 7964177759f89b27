"""Benchmarks that print ratios against a reference measured in the same run (never timed tests).

``train``: ablate's training step vs the plain Hugging Face loop (``reference``);
``latency``: a study's variants plus reference rows, summarised as throughput ratios.
"""
