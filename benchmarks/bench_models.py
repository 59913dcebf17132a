"""Benchmark: fit and score every outcome's risk model on 1 million cases.

Target (issue 6): at most 60 s on a 2-core machine. The cases come from the
synthetic collaborative's truth (clean covariates, labs missing as sent), so
the fit sees exactly the design the pipeline builds.

    .venv/bin/python benchmarks/bench_models.py [--cases 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from orchestration.registry import load_registry
from orchestration.riskmodels import fit_measure
from orchestration.settings import registry_dir
from orchestration.stats import score
from orchestration.synth import generate_collaborative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    args = parser.parse_args()
    registry = load_registry(registry_dir())
    with tempfile.TemporaryDirectory(prefix="cqi-bench-models-") as folder:
        generate_collaborative(registry, Path(folder), cases=args.cases, sites=80, periods=8, seed=5, defects=False)
        cases = pd.read_parquet(Path(folder) / "truth" / "cases.parquet")
    for variable in registry.variables:   # the file leaves missing labs blank: so must the fit
        if f"missing_{variable.name}" in cases:
            cases.loc[cases[f"missing_{variable.name}"], variable.name] = None
    timings = {}
    started = time.perf_counter()
    for measure in registry.measures:
        counted = cases[cases[f"denominator_{measure.id}"]].copy()
        counted["is_event"] = counted[f"y_{measure.id}"].astype(bool)
        t0 = time.perf_counter()
        fitted = fit_measure(counted, registry, measure)
        t1 = time.perf_counter()
        score(counted, fitted.coefficients)
        t2 = time.perf_counter()
        timings[measure.id] = {"cases": len(counted), "fit_s": round(t1 - t0, 2), "score_s": round(t2 - t1, 2),
                               "c_statistic": round(float(fitted.quality["c_statistic"]), 3)}
    total = time.perf_counter() - started
    print(json.dumps({"benchmark": "fit_and_score_all_measures", "cases": args.cases,
                      "wall_s": round(total, 2), "target_s": 60,
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "measures": timings}, indent=2))


if __name__ == "__main__":
    main()
