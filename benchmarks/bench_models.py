"""Benchmark: fit and score every outcome's risk model on 1 million cases.

Target (issue 6): at most 60 s on a 2-core machine. The cases come from the
synthetic collaborative's truth (clean covariates, labs missing as sent), so
the fit sees exactly the design the pipeline builds.

    .venv/bin/python benchmarks/bench_models.py [--cases 1000000]

With ``--warehouse PATH`` it times the pipeline's ``risk_models`` step
(issue 9) instead, on a copy of a built warehouse (for example the M
harness's ``/tmp/cqi-bench/M-80x8x1000000/data/warehouse.duckdb``): a full
refresh (every measure fitted), a refresh with nothing changed, and one
after a resubmission of the smallest site-period (every case's age + 1),
which the refit policy keeps under its threshold.

    .venv/bin/python benchmarks/bench_models.py --warehouse PATH
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from orchestration.registry import load_registry
from orchestration.riskmodels import fit_measure
from orchestration.riskmodels.refresh import refresh_models
from orchestration.settings import registry_dir
from orchestration.stats import score
from orchestration.synth import generate_collaborative


def fit_and_score(registry, cases: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cqi-bench-models-") as folder:
        generate_collaborative(registry, Path(folder), cases=cases, sites=80, periods=8, seed=5, defects=False)
        frame = pd.read_parquet(Path(folder) / "truth" / "cases.parquet")
    for variable in registry.variables:   # the file leaves missing labs blank: so must the fit
        if f"missing_{variable.name}" in frame:
            frame.loc[frame[f"missing_{variable.name}"], variable.name] = None
    timings = {}
    started = time.perf_counter()
    for measure in registry.measures:
        counted = frame[frame[f"denominator_{measure.id}"]].copy()
        counted["is_event"] = counted[f"y_{measure.id}"].astype(bool)
        t0 = time.perf_counter()
        fitted = fit_measure(counted, registry, measure)
        t1 = time.perf_counter()
        score(counted, fitted.coefficients)
        t2 = time.perf_counter()
        timings[measure.id] = {"cases": len(counted), "fit_s": round(t1 - t0, 2), "score_s": round(t2 - t1, 2),
                               "c_statistic": round(float(fitted.quality["c_statistic"]), 3)}
    total = time.perf_counter() - started
    return {"benchmark": "fit_and_score_all_measures", "cases": cases, "wall_s": round(total, 2),
            "fit_s": round(sum(t["fit_s"] for t in timings.values()), 2), "target_s": 60, "measures": timings}


def risk_models_step(registry, warehouse: Path) -> dict:
    runs = {}
    with tempfile.TemporaryDirectory(prefix="cqi-bench-models-") as folder:
        copy = Path(folder) / "warehouse.duckdb"    # the views name the catalog "warehouse"
        shutil.copyfile(warehouse, copy)
        with duckdb.connect(str(copy)) as con:
            con.execute("drop table if exists models.fit_fingerprints")   # no record: every measure is fitted
            site_id, period, n = con.execute(
                "select site_id, period, count(*) from raw.cases group by all order by 3, 1, 2 limit 1").fetchone()
            for name, change in [("full", None), ("unchanged", None),
                                 (f"resubmission of {site_id} {period} ({n:,} rows)",
                                  f"update raw.cases set age_years = age_years + 1 "
                                  f"where site_id = '{site_id}' and period = '{period}'")]:
                if change:
                    con.execute(change)
                t0 = time.perf_counter()
                refresh = refresh_models(con, registry)
                runs[name] = {"wall_s": round(time.perf_counter() - t0, 2), "models_fitted": len(refresh.fitted),
                              "decisions": {m: d.reason for m, d in refresh.decisions.items()}}
    return {"benchmark": "risk_models_step", "warehouse": str(warehouse),
            "refit_min_change": registry.policy.risk_model_refit_min_change, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--warehouse", type=Path, help="time the risk_models step on a copy of this warehouse")
    args = parser.parse_args()
    registry = load_registry(registry_dir())
    result = risk_models_step(registry, args.warehouse) if args.warehouse else fit_and_score(registry, args.cases)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
