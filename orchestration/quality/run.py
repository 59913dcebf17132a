"""One quality run, in order: overrides, findings and grades, query lifecycle, scorecards, worklists.

Override requests are applied first so the grades already leave out the
values the coordinating centre confirmed. Everything but the worklist files
happens on the one warehouse connection of the quality asset, and the
results are written in one transaction with ``quality.checked_sites``.

The run is incremental by site (``incremental.py``): only the sites whose
current submissions, overrides or roster entry changed since the last run
are read again, and only the sites whose results changed get new grades,
query events, scorecard rows and worklist files. A change of the registry
or its rules, ``full=True`` or ``CQI_QUALITY_FULL=1`` checks every site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from ..registry import Registry
from ..settings import Paths
from . import incremental
from .findings import compute_findings
from .lifecycle import apply_override_requests, update_queries, utc_now
from .overrides import overrides_folder
from .queries import ensure_query_tables
from .scorecards import write_scorecards
from .site_checks import build_site_period_submissions
from .worklists import worklist_missing, write_worklists


@dataclass(frozen=True)
class QualityRun:
    findings: int
    grades: dict[str, int]
    events: dict[str, int]
    overrides: dict[str, int]
    open_queries: int
    worklists: list[Path] = field(default_factory=list)
    full: bool = True
    full_reason: str = ""
    sites_checked: int = 0          # sites whose rows were read and checked again
    sites_unchanged: int = 0        # sites whose inputs had not changed (rows not read)
    sites_updated: int = 0          # sites whose grades, queries and scorecards were rewritten
    rows_checked: int = 0           # current rows read by the checks

    @property
    def worklist_sites_written(self) -> int:
        return len(self.worklists)


def run_quality(con: duckdb.DuckDBPyConnection, registry: Registry, folders: Paths,
                now: datetime | None = None, worklists: bool = True, full: bool = False) -> QualityRun:
    now = now or utc_now()
    ensure_query_tables(con)
    overrides = apply_override_requests(con, overrides_folder(folders.data_dir), now)
    build_site_period_submissions(con, registry)
    plan = incremental.plan(con, registry, full)
    scoped = not plan.full
    con.execute("begin transaction")
    try:
        findings = compute_findings(con, registry, scoped=scoped)
        events = update_queries(con, now, scoped=scoped, transaction=False)
        write_scorecards(con, scoped=scoped)
        incremental.record(con, registry, now)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    rows_checked = con.execute("select count(*) from current_rows").fetchone()[0]
    sites_updated = con.execute("select count(*) from quality_scope").fetchone()[0]
    grades = dict(con.execute("select status, count(*) from quality.site_period_status group by status").fetchall())
    open_queries = con.execute(
        "select count(*) from quality.queries where status in ('open', 'reopened')").fetchone()[0]
    written: list[Path] = []
    if worklists:
        roster = [s.site_id for s in registry.sites]
        due = set(roster) if plan.full else incremental.worklists_due(con) | {
            s for s in roster if worklist_missing(folders.worklists, s)}
        written = write_worklists(con, registry, folders.worklists, sites=due)
        incremental.worklists_written(con, [p.parent.name for p in written])
    return QualityRun(findings, grades, events, overrides, open_queries, written, plan.full, plan.reason,
                      len(plan.checked), plan.unchanged, sites_updated, rows_checked)
