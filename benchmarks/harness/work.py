"""How much each stage of a cycle processed: submissions, sites, site-periods, rows.

Why: an incremental cycle (one site resubmits one quarter) should cost in
proportion to what changed. Counting what every stage read or rewrote, beside
the sites that actually changed, shows which stage re-processes unchanged
sites. The counts come from the warehouse and the data folder after the run
(read-only), compared with a snapshot taken before it.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from orchestration.settings import paths

STAGE_OF_STEP = (   # first match wins: the stage a Dagster step belongs to
    ("registry_definition", "intake"), ("site_submissions", "intake"),
    ("enough_sites_pass_quality", "quality"), ("data_quality", "quality"),
    ("warehouse_models", "dbt_build"), ("mart_models", "dbt_build"),
    ("risk_models", "risk_models"),
    ("publication", "publication"), ("packages_reveal", "publication"), ("no_direct_identifier", "publication"),
    ("no_small_count", "publication"),
)
STAGES = ["intake", "quality", "dbt_build", "risk_models", "publication"]


def stage_of(step_key: str) -> str:
    for fragment, stage in STAGE_OF_STEP:
        if fragment in step_key:
            return stage
    return "other"


def _connect():
    warehouse = paths().warehouse
    return duckdb.connect(str(warehouse), read_only=True) if warehouse.exists() else None


def _has(con, schema: str, table: str) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                       [schema, table]).fetchone()[0] > 0


def snapshot() -> dict:
    """What exists before the run: submission ids and model versions."""
    con = _connect()
    if con is None:
        return {"submissions": [], "model_versions": [], "time": time.time()}
    with con:
        submissions = [r[0] for r in con.execute("select submission_id from intake.submissions").fetchall()] \
            if _has(con, "intake", "submissions") else []
        versions = [r[0] for r in con.execute("select model_version from models.model_versions").fetchall()] \
            if _has(con, "models", "model_versions") else []
        fingerprints = _site_fingerprints(con)
    return {"submissions": submissions, "model_versions": versions, "site_fingerprints": fingerprints,
            "time": time.time()}


# dbt models built incremental by site (dbt_project/macros/site_fingerprints.sql): a
# site's rows are rewritten exactly when its fingerprint changes.
INCREMENTAL_MODELS = ("intermediate.int_case_outcomes", "marts.fct_case_risk", "intermediate.int_site_period_outcomes")


def _site_fingerprints(con) -> dict[str, list[list[str]]]:
    found = {}
    for table in INCREMENTAL_MODELS:
        schema, name = table.split(".")
        columns = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                             "where table_schema = ? and table_name = ?", [schema, name]).fetchall()}
        if "site_fingerprint" in columns:
            found[table] = [list(r) for r in con.execute(
                f"select distinct site_id, site_fingerprint from {table}").fetchall()]
    return found


def _dbt_work(con, before: dict, tables: dict[str, int]) -> dict:
    """What dbt rewrote: per incremental model the sites whose fingerprint is new or changed and their
    rows; every other table whole (the marts: per-period comparisons across all sites, a few rows each)."""
    after = _site_fingerprints(con)
    sites, rows, written = set(), 0, {}
    for table, count in tables.items():
        if table in after:
            old = {tuple(r) for r in before.get("site_fingerprints", {}).get(table, [])}
            changed = sorted({site for site, fingerprint in after[table] if (site, fingerprint) not in old})
            sites |= set(changed)
            count = con.execute(f"select count(*) from {table} where site_id in (select unnest(?::varchar[]))",
                                [changed]).fetchone()[0] if changed else 0
        written[table] = count
        rows += count
    return {"sites": len(sites), "rows": rows, "tables": written,
            "incremental_models": sorted(after), "whole_tables": sorted(set(tables) - set(after))}


def _window(steps: dict, fragment: str) -> tuple[float, float]:
    chosen = [s for k, s in steps.items() if fragment in k and "start" in s]
    if not chosen:
        return (0.0, 0.0)
    return min(s["start"] for s in chosen), max(s.get("end", s["start"]) for s in chosen)


def _sites_written(folder: Path, window: tuple[float, float]) -> int:
    """Site folders under ``folder`` with a file written during ``window``."""
    start, end = window
    return len({p.relative_to(folder).parts[0] for p in folder.rglob("*")
                if p.is_file() and start - 1 <= p.stat().st_mtime <= end + 1 and len(p.relative_to(folder).parts) > 1})


def _metadata(result: dict, asset: str) -> dict:
    return next((m["metadata"] for m in result["materialisations"] if m["asset"] == asset), {})


def work_done(before: dict, result: dict) -> dict:
    """Per stage: sites, site-periods and rows it processed, and the sites that changed."""
    steps = result["steps"]
    con = _connect()
    if con is None:
        return {}
    with con:
        con.execute("create temp table known as select unnest(?::varchar[]) as submission_id",
                    [before["submissions"]])
        new = con.execute(
            "select count(*), count(distinct site_id), coalesce(sum(rows_loaded), 0), "
            "count(distinct site_id || '/' || p) filter (where p is not null) "
            "from intake.submissions s left join unnest(s.periods) as u(p) on true "
            "where submission_id not in (select submission_id from known)").fetchone()
        changed_sites = [r[0] for r in con.execute(
            "select distinct site_id from intake.submissions where submission_id not in "
            "(select submission_id from known) and status <> 'rejected' order by 1").fetchall()]
        current = con.execute(
            "select count(*), count(distinct c.site_id), count(distinct c.site_id || '/' || c.period) "
            "from raw.cases c join intake.current_submission_periods s using (submission_id, period)").fetchone()
        findings = con.execute("select count(*) from quality.findings").fetchone()[0] \
            if _has(con, "quality", "findings") else 0
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('intermediate', 'marts') and table_type = 'BASE TABLE' order by 1").fetchall()
        rebuilt = {t[0]: con.execute(f"select count(*) from {t[0]}").fetchone()[0] for t in tables}
        dbt = _dbt_work(con, before, rebuilt)
        fitted = con.execute(
            "select count(*), coalesce(sum(cases), 0) from models.model_versions "
            "where model_version not in (select unnest(?::varchar[]))", [before["model_versions"]]).fetchone() \
            if _has(con, "models", "model_versions") else (0, 0)
        fit_sites = con.execute("select count(distinct site_id) from intermediate.int_case_outcomes "
                                "where is_counted").fetchone()[0] if fitted[0] else 0
    folders = paths()
    publication = _metadata(result, "publication")
    quality = _metadata(result, "quality/findings")
    work = {
        "changed_sites": changed_sites,
        "intake": {"submissions": new[0], "sites": new[1], "site_periods": new[3], "rows": int(new[2])},
        # the quality stage reports what it checked (incremental by site); older code checked everything
        "quality": {"sites": int(quality.get("sites_checked", current[1])),
                    "rows": int(quality.get("rows_checked", current[0])), "current_rows": current[0],
                    "current_site_periods": current[2], "findings": findings,
                    "worklist_sites_written": _sites_written(folders.worklists, _window(steps, "data_quality"))},
        "dbt_build": {**dbt, "tables_rebuilt": len(rebuilt)},
        "risk_models": {"models_fitted": fitted[0], "sites": fit_sites, "rows": int(fitted[1])},
        # sites whose own cases were read again (the others' CUSUM and VLAD were kept); every package is
        # rewritten, since every site's comparison with its peers changes
        "publication": {"sites": int(publication.get("sites_cases_read", publication.get("site_packages", 0)) or 0),
                        "packages": int(publication.get("site_packages", 0) or 0),
                        "files": int(publication.get("files", 0) or 0)},
    }
    for stage in STAGES:
        work[stage]["reprocesses_unchanged_sites"] = work[stage]["sites"] > len(changed_sites)
    return work
