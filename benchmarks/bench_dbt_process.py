"""Benchmark: a dbt invocation in the Dagster step's process against one in its own process (issue 9).

Why: the two measured choices differ by a few seconds per cycle. Harness
runs on different days (or an hour apart) differ by more than that, so the
comparison is made back to back, in one process, on one copy of a
warehouse: the two dbt assets (``warehouse_models``, then ``mart_models``,
as in a cycle) are materialised ``--repeats`` times each way, alternating.
With nothing new in the warehouse the builds are incremental no-ops, so what
is left is what every invocation costs whatever the change: process start,
imports, parse, the data tests and the mart tables. The first in-process
round pays dbt's imports in this process, as the first dbt step of a cycle
run does.

    .venv/bin/python benchmarks/bench_dbt_process.py [--data /tmp/cqi-bench/M-80x8x1000000/data] [--repeats 2]

``--data`` is a data folder holding a built ``warehouse.duckdb`` (the M
harness leaves one); the warehouse and its ``.cache`` are copied, not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/cqi-bench/M-80x8x1000000/data"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dbt-"))
    shutil.copy(args.data / "warehouse.duckdb", work / "warehouse.duckdb")
    if (args.data / ".cache").is_dir():
        shutil.copytree(args.data / ".cache", work / ".cache")
    os.environ.update(CQI_WAREHOUSE=str(work / "warehouse.duckdb"), CQI_DATA_DIR=str(args.data))

    import dagster as dg

    from orchestration.defs.resources import CqiResource
    from orchestration.defs.warehouse.dbt_assets import dbt_resource, mart_models, warehouse_models

    rounds = []
    for repeat in range(args.repeats):
        for way in ("in_process", "subprocess"):
            if way == "subprocess":
                os.environ["CQI_DBT_SUBPROCESS"] = "1"
            else:
                os.environ.pop("CQI_DBT_SUBPROCESS", None)
            seconds = {}
            for asset in (warehouse_models, mart_models):
                started = time.perf_counter()
                result = dg.materialize([asset], resources={"dbt": dbt_resource(), "cqi": CqiResource()})
                assert result.success, asset.op.name
                seconds[asset.op.name] = round(time.perf_counter() - started, 2)
            rounds.append({"round": repeat + 1, "way": way, **seconds})
            print(json.dumps(rounds[-1]), flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
