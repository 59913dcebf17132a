"""Abstractor worklists: each site's findings as a file it can work through."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ..registry import Registry


def write_worklists(con: duckdb.DuckDBPyConnection, registry: Registry, folder: Path) -> list[Path]:
    """``<folder>/<site>/queries.csv``: the site's findings, blocking first, grouped by case."""
    written = []
    for site_id in registry.site_ids():
        frame = con.execute(
            "select case_id, period, field, rule_id, rule_version, category, severity, observed, expected, "
            "definition, submission_id, row_number from quality.findings where site_id = ? "
            "order by severity = 'blocking' desc, case_id, field, rule_id", [site_id]).df()
        target = folder / site_id
        target.mkdir(parents=True, exist_ok=True)
        path = target / "queries.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written
