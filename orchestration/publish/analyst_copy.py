"""The analyst copy: a read-only snapshot of the marts that never blocks the pipeline.

DuckDB allows one writer, so analysts never open the pipeline's warehouse.
After each successful publication the marts (and the registry's measures and
sites) are written as Parquet files and as a separate DuckDB file under
``analyst/snapshots/<id>/``; ``analyst/latest`` is switched to it with one
atomic rename, so a reader holding the previous snapshot open keeps reading
it undisturbed.

A new snapshot starts from a copy of the previous one's DuckDB file. The
scored cases (``BY_SITE``: millions of rows) are then refreshed only for the
sites whose rows differ from the warehouse's (a fingerprint per site), so
after one site resubmits a quarter one site's cases are written, not every
case of the registry; the small tables are replaced whole. Each snapshot
records its sites' fingerprints beside its database (``FINGERPRINTS``), with
the database file's size and modification time: the next snapshot then
hashes only the warehouse's rows, not the copy's too (0.35 s of an M
cycle). If the file was changed since (an analyst wrote to it), the copy is
hashed as before.

Their Parquet copy is a folder with a file per site (``fct_case_risk/
site_id=S001/data_0.parquet``: DuckDB's ``read_parquet('fct_case_risk/*/*.parquet')``
and pandas' ``read_parquet('fct_case_risk')`` read it whole). A site whose rows
did not change keeps the previous snapshot's file, as a hard link: at M,
writing every case again took 1.6 s of each cycle.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb

from .inputs import _link

TABLES = ["marts.mart_site_results", "marts.mart_funnel_limits", "marts.mart_collaborative_summary",
          "marts.fct_case_risk", "registry.measures", "registry.sites", "models.model_versions"]
BY_SITE = {"marts.fct_case_risk"}
DATABASE = "analyst.duckdb"
FINGERPRINTS = "fingerprints.json"


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _previous_database(analyst_dir: Path, target: Path) -> Path | None:
    latest = analyst_dir / "latest"
    if not latest.is_symlink():
        return None
    previous = latest.resolve()
    return previous / DATABASE if previous != target.resolve() and (previous / DATABASE).is_file() else None


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".")
    return con.execute("select column_name, data_type from information_schema.columns where table_catalog = ? "
                       "and table_schema = ? and table_name = ? order by ordinal_position",
                       [catalog, schema, name]).fetchall()


def site_fingerprints(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> dict:
    """Each site's row count and the sum of its rows' 64-bit hashes: equal for equal rows in any order
    (different rows give the same pair with a chance of about 2**-64)."""
    return {site: [n, fingerprint] for site, n, fingerprint in con.execute(
        f"select site_id, count(*), sum(hash({', '.join(columns)}))::varchar from {table} group by site_id"
    ).fetchall()}


def changed_sites(copy: duckdb.DuckDBPyConnection, table: str, recorded: dict | None = None,
                  found: dict | None = None) -> list:
    """The sites whose rows of ``table`` differ between the copy and the warehouse (``source``).

    ``recorded``: the copy's fingerprints as its snapshot recorded them (the copy is then not read);
    ``found[table]`` receives the warehouse's.
    """
    columns = [name for name, _ in _columns(copy, "source", table)]
    source = site_fingerprints(copy, "source." + table, columns)
    kept = recorded if recorded is not None else site_fingerprints(copy, table, columns)
    if found is not None:
        found[table] = source
    return sorted((site for site in set(source) | set(kept) if source.get(site) != kept.get(site)),
                  key=lambda site: (site is None, site))


def _refresh(copy: duckdb.DuckDBPyConnection, table: str, recorded: dict, found: dict) -> list | None:
    """Make the copy's ``table`` equal to the warehouse's; the sites rewritten, or None when it was replaced whole.

    ``recorded``: the previous snapshot's fingerprints by table; ``found`` receives this one's."""
    local = copy.execute("select current_database()").fetchone()[0]
    columns = _columns(copy, "source", table)
    if table not in BY_SITE or _columns(copy, local, table) != columns:
        copy.execute(f"create or replace table {table} as select * from source.{table}")
        if table in BY_SITE:
            found[table] = site_fingerprints(copy, table, [name for name, _ in columns])
        return None
    changed = changed_sites(copy, table, recorded.get(table), found)
    if changed:
        copy.execute("create or replace temp table changed_sites as select unnest(?) as site_id", [changed])
        copy.execute(f"delete from {table} where exists (select 1 from changed_sites c "
                     f"where c.site_id is not distinct from {table}.site_id)")
        copy.execute(f"insert into {table} select * from source.{table} t where exists "
                     f"(select 1 from changed_sites c where c.site_id is not distinct from t.site_id)")
    return changed


def _file_identity(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


def _recorded(previous: Path | None) -> dict:
    """The previous snapshot's fingerprints by table, if its database is the file they were recorded for."""
    sidecar = previous.parent / FINGERPRINTS if previous is not None else None
    if sidecar is None or not sidecar.is_file():
        return {}
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
        return recorded["tables"] if recorded["database"] == _file_identity(previous) else {}
    except (ValueError, KeyError, TypeError):
        return {}


def _record(database: Path, found: dict) -> None:
    """Write this snapshot's fingerprints (a table with rows of no site is left out: JSON keys are text)."""
    tables = {table: sites for table, sites in found.items() if None not in sites}
    (database.parent / FINGERPRINTS).write_text(json.dumps({"database": _file_identity(database), "tables": tables},
                                                           sort_keys=True), encoding="utf-8")


def _write_parquet(copy: duckdb.DuckDBPyConnection, table: str, target: Path, previous: Path | None,
                   changed: list | None) -> None:
    """The snapshot's Parquet copy of ``table``; by site for ``BY_SITE``, each unchanged site's file linked
    from the ``previous`` snapshot folder (``changed``: the sites rewritten, None when every site was)."""
    name = table.split(".")[1]
    if table not in BY_SITE:
        copy.execute(f"copy {table} to {_literal(target / (name + '.parquet'))} (format parquet)")
        return
    folder, kept = target / name, {}
    if previous is not None and changed is not None and (previous / name).is_dir():
        for (site,) in copy.execute(f"select distinct site_id from {table} where site_id is not null").fetchall():
            files = sorted((previous / name / f"site_id={site}").glob("*.parquet"))
            if site not in changed and files:
                kept[site] = files
    written = "" if not kept else "where site_id is null or not list_contains(?, site_id)"
    folder.mkdir()
    copy.execute(f"copy (select * from {table} {written}) to {_literal(folder)} "
                 f"(format parquet, partition_by (site_id), overwrite_or_ignore)", [list(kept)] if kept else [])
    for site, files in kept.items():
        for file in files:
            _link(file, folder / f"site_id={site}" / file.name)


def _drop_others(copy: duckdb.DuckDBPyConnection) -> None:
    """Drop what the previous snapshot holds that this one does not publish (a table since removed)."""
    for schema, name in copy.execute("select table_schema, table_name from information_schema.tables "
                                     "where table_catalog = current_database() and table_type = 'BASE TABLE'"
                                     ).fetchall():
        if f"{schema}.{name}" not in TABLES:
            copy.execute(f'drop table "{schema}"."{name}"')


def publish_analyst_copy(warehouse: Path, analyst_dir: Path, snapshot_id: str) -> Path:
    target = analyst_dir / "snapshots" / snapshot_id
    target.mkdir(parents=True, exist_ok=True)
    database = target / DATABASE
    previous = _previous_database(analyst_dir, target)
    for stale in (database, database.with_name(DATABASE + ".wal"), target / FINGERPRINTS):
        if stale.exists():
            stale.unlink()
    recorded, found = _recorded(previous), {}
    for stale in BY_SITE:   # a folder left by an interrupted attempt at this snapshot
        shutil.rmtree(target / stale.split(".")[1], ignore_errors=True)
    if previous is not None:
        shutil.copyfile(previous, database)
    with duckdb.connect(str(database)) as copy:
        copy.execute(f"attach {_literal(warehouse)} as source (read_only)")
        _drop_others(copy)
        for table in TABLES:
            copy.execute(f"create schema if not exists {table.split('.')[0]}")
            _write_parquet(copy, table, target, previous.parent if previous else None,
                           _refresh(copy, table, recorded, found))
        copy.execute("detach source")
    _record(database, found)
    temporary = analyst_dir / ".latest.switch"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(os.path.relpath(target, analyst_dir), temporary)
    os.replace(temporary, analyst_dir / "latest")
    return target
