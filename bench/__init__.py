"""Benchmarks: `python -m bench.<name>`, each printing one JSON object per line.

Every line is ``{"bench", "metric", "value", "unit", "baseline", "ratio"}`` with the
baseline measured in the same run on the same machine, so figures from different
machines are compared by their ratios. Performance is never asserted in tests.
"""
