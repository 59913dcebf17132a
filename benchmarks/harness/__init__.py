"""Whole-cycle benchmark harness (issue 9): S, M and L scenarios, a DuckDB floor, fixed overheads.

Why a harness beside the per-stage ``bench_*.py`` scripts: those time one
stage in isolation, with their own shortcuts. This one runs the cycle the way
production does (``orchestration.cycle.run_cycle`` on the project's Dagster
instance), in a child process whose whole process tree (dbt subprocesses
included) is sampled for memory from outside, takes stage times from the
Dagster run's step events, and sets every figure beside a floor: the same
essential work done directly in DuckDB with no orchestration.

    .venv/bin/python -m benchmarks.harness --scenario S [--write-readme]

Not part of the test suite; ``tests/benchmarks/test_harness_smoke.py`` runs
the ``smoke`` scenario (a few hundred cases) to keep it working.
"""
