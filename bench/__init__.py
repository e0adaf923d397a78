"""Benchmarks of issue 3 §6: run ``.venv/bin/python bench/run.py`` (see docs/benchmarks.md).

Nothing here is a test: the scripts print figures, they assert nothing about timings.
"""
