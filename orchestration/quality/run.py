"""One quality run, in order: overrides, findings and grades, query lifecycle, scorecards, worklists.

Override requests are applied first so the grades already leave out the
values the coordinating centre confirmed. Everything but the worklist files
happens on the one warehouse connection of the quality asset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from ..registry import Registry
from ..settings import Paths
from .findings import compute_findings
from .lifecycle import apply_override_requests, update_queries, utc_now
from .overrides import overrides_folder
from .queries import ensure_query_tables
from .scorecards import write_scorecards
from .worklists import write_worklists


@dataclass(frozen=True)
class QualityRun:
    findings: int
    grades: dict[str, int]
    events: dict[str, int]
    overrides: dict[str, int]
    open_queries: int
    worklists: list[Path] = field(default_factory=list)


def run_quality(con: duckdb.DuckDBPyConnection, registry: Registry, folders: Paths,
                now: datetime | None = None, worklists: bool = True) -> QualityRun:
    now = now or utc_now()
    ensure_query_tables(con)
    overrides = apply_override_requests(con, overrides_folder(folders.data_dir), now)
    findings = compute_findings(con, registry)
    events = update_queries(con, now)
    write_scorecards(con)
    grades = dict(con.execute("select status, count(*) from quality.site_period_status group by status").fetchall())
    open_queries = con.execute(
        "select count(*) from quality.queries where status in ('open', 'reopened')").fetchone()[0]
    written = write_worklists(con, registry, folders.worklists) if worklists else []
    return QualityRun(findings, grades, events, overrides, open_queries, written)
