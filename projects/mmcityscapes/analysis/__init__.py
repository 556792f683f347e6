"""Benchmarks behind ``tools/analysis_tools/benchmark*.py``: model speed and evaluator speed."""
