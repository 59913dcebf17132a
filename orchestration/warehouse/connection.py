"""Opening the warehouse.

DuckDB allows one writing process per file. The pipeline's runs are queued
one at a time (``dagster.yaml``) and every asset opens, writes and closes its
connection before the next step, so dbt (a separate process) can open the
file in turn. Analysts never open this file: they read the published copy.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from ..settings import duckdb_memory_limit


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": duckdb_memory_limit()})
    try:
        yield con
    finally:
        con.close()
