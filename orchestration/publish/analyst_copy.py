"""The analyst copy: a read-only snapshot of the marts that never blocks the pipeline.

DuckDB allows one writer, so analysts never open the pipeline's warehouse.
After each successful publication the marts (and the registry's measures and
sites) are written as Parquet files and as a separate DuckDB file under
``analyst/snapshots/<id>/``; ``analyst/latest`` is switched to it with one
atomic rename, so a reader holding the previous snapshot open keeps reading
it undisturbed.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

TABLES = ["marts.mart_site_results", "marts.mart_funnel_limits", "marts.mart_collaborative_summary",
          "marts.fct_case_risk", "registry.measures", "registry.sites", "models.model_versions"]


def publish_analyst_copy(warehouse: Path, analyst_dir: Path, snapshot_id: str) -> Path:
    target = analyst_dir / "snapshots" / snapshot_id
    target.mkdir(parents=True, exist_ok=True)
    database = target / "analyst.duckdb"
    if database.exists():
        database.unlink()
    with duckdb.connect(str(database)) as copy:
        copy.execute(f"attach '{warehouse}' as source (read_only)")
        for table in TABLES:
            schema, name = table.split(".")
            copy.execute(f"create schema if not exists {schema}")
            copy.execute(f"create table {schema}.{name} as select * from source.{schema}.{name}")
            copy.execute(f"copy {schema}.{name} to '{target / (name + '.parquet')}' (format parquet)")
        copy.execute("detach source")
    temporary = analyst_dir / ".latest.switch"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(os.path.relpath(target, analyst_dir), temporary)
    os.replace(temporary, analyst_dir / "latest")
    return target
