"""The analyst copy: a read-only snapshot of the marts that never blocks the pipeline.

DuckDB allows one writer, so analysts never open the pipeline's warehouse.
After each successful publication the marts (and the registry's measures and
sites) are written as Parquet files and as a separate DuckDB file under
``analyst/snapshots/<id>/``; ``analyst/latest`` is switched to it with one
atomic rename, so a reader holding the previous snapshot open keeps reading
it undisturbed.

The small tables are tables in the snapshot's DuckDB file. The scored cases
(``BY_SITE``: millions of rows) are a folder of Parquet files, one per site
(``fct_case_risk/site_id=S001/data_0.parquet``), and the DuckDB file holds a
view over that folder (by its absolute path), with the warehouse's column
types: the same rows, queried the same way, without writing every case twice
(at national scale the DuckDB copy took 40 s of a full cycle and a gigabyte
per snapshot). DuckDB's ``read_parquet('fct_case_risk/*/*.parquet')`` and
pandas' ``read_parquet('fct_case_risk')`` read the folder whole.

A site whose rows did not change since the previous snapshot keeps that
snapshot's file, as a hard link: after one site resubmits a quarter one
site's cases are written, not every case of the registry. Each snapshot
records, beside its database (``FINGERPRINTS``), every site's fingerprint (a
row count and a sum of row hashes) and the size and modification time of its
files; a site is linked only when its fingerprint in the warehouse is the
recorded one and its files are as recorded. Anything else (a damaged record,
a file changed since, other columns) writes the site again.
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
NO_SITE = "__HIVE_DEFAULT_PARTITION__"   # DuckDB's folder for rows without a site


def _literal(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _previous_snapshot(analyst_dir: Path, target: Path) -> Path | None:
    latest = analyst_dir / "latest"
    if not latest.is_symlink():
        return None
    previous = latest.resolve()
    return previous if previous != target.resolve() and previous.is_dir() else None


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[list[str]]:
    schema, name = table.split(".")
    return [list(row) for row in con.execute(
        "select column_name, data_type from information_schema.columns where table_catalog = ? "
        "and table_schema = ? and table_name = ? order by ordinal_position", [catalog, schema, name]).fetchall()]


def site_folder(site: str | None) -> str:
    return f"site_id={NO_SITE if site is None else site}"


def site_fingerprints(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> dict[str, list]:
    """Each site's folder name -> its row count and the sum of its rows' 64-bit hashes: equal for equal
    rows in any order (different rows give the same pair with a chance of about 2**-64)."""
    return {site_folder(site): [n, fingerprint] for site, n, fingerprint in con.execute(
        f"select site_id, count(*), sum(hash({', '.join(columns)}))::varchar from {table} group by site_id"
    ).fetchall()}


def _files(folder: Path) -> list[list]:
    """A site folder's files: name, size and modification time (a hard link has its source's)."""
    return sorted([path.name, path.stat().st_size, path.stat().st_mtime_ns] for path in folder.glob("*.parquet"))


def _recorded(previous: Path | None) -> dict:
    """The previous snapshot's record by table ({} when there is none or it cannot be read)."""
    sidecar = previous / FINGERPRINTS if previous is not None else None
    if sidecar is None or not sidecar.is_file():
        return {}
    try:
        tables = json.loads(sidecar.read_text(encoding="utf-8"))["tables"]
        return tables if isinstance(tables, dict) else {}
    except (ValueError, KeyError, TypeError):
        return {}


def reusable_sites(fingerprints: dict[str, list], columns: list[list[str]], record: dict | None,
                   folder: Path | None) -> list[str]:
    """The site folders of ``folder`` (the previous snapshot's) that hold exactly the warehouse's rows now:
    same columns, same fingerprint, files as recorded."""
    if folder is None or not isinstance(record, dict) or record.get("columns") != columns:
        return []
    sites, files = record.get("sites") or {}, record.get("files") or {}
    return [site for site, fingerprint in fingerprints.items()
            if sites.get(site) == fingerprint and files.get(site) and _files(folder / site) == files[site]]


def _write_by_site(copy: duckdb.DuckDBPyConnection, table: str, target: Path, previous: Path | None,
                   recorded: dict) -> dict:
    """The table's Parquet folder (changed sites written, the others linked) and its view; its record."""
    name = table.split(".")[1]
    columns = _columns(copy, "source", table)
    fingerprints = site_fingerprints(copy, f"source.{table}", [column for column, _ in columns])
    folder = target / name
    folder.mkdir()
    kept = reusable_sites(fingerprints, columns, recorded.get(table), previous / name if previous else None)
    written = [site for site in fingerprints if site not in kept]
    if written:
        only = "" if not kept else "where coalesce('site_id=' || site_id, ?) in (select unnest(?::varchar[]))"
        copy.execute(f"copy (select * from source.{table} {only}) to {_literal(folder)} "
                     f"(format parquet, partition_by (site_id), overwrite_or_ignore)",
                     [site_folder(None), written] if kept else [])
    for site in kept:
        (folder / site).mkdir()
        for file_name, *_ in recorded[table]["files"][site]:
            _link(previous / name / site / file_name, folder / site / file_name)
    if fingerprints:
        typed = ", ".join(f'cast("{column}" as {data_type}) as "{column}"' for column, data_type in columns)
        copy.execute(f"create view {table} as select {typed} from read_parquet("
                     f"{_literal(folder.resolve() / '*' / '*.parquet')}, hive_partitioning = true, "
                     f"hive_types = {{'site_id': 'VARCHAR'}})")
    else:   # no rows, no file to read: an empty table of the same columns
        copy.execute(f"create table {table} as select * from source.{table} limit 0")
    return {"columns": columns, "sites": fingerprints, "files": {site: _files(folder / site) for site in fingerprints}}


def publish_analyst_copy(warehouse: Path, analyst_dir: Path, snapshot_id: str) -> Path:
    target = analyst_dir / "snapshots" / snapshot_id
    target.mkdir(parents=True, exist_ok=True)
    database = target / DATABASE
    previous = _previous_snapshot(analyst_dir, target)
    for stale in (database, database.with_name(DATABASE + ".wal"), target / FINGERPRINTS):
        if stale.exists():   # left by an interrupted attempt at this snapshot
            stale.unlink()
    for table in TABLES:
        name = table.split(".")[1]
        shutil.rmtree(target / name, ignore_errors=True)
        (target / f"{name}.parquet").unlink(missing_ok=True)
    recorded, record = _recorded(previous), {}
    with duckdb.connect(str(database)) as copy:
        copy.execute(f"attach {_literal(warehouse)} as source (read_only)")
        for table in TABLES:
            copy.execute(f"create schema if not exists {table.split('.')[0]}")
            if table in BY_SITE:
                record[table] = _write_by_site(copy, table, target, previous, recorded)
            else:
                copy.execute(f"create table {table} as select * from source.{table}")
                copy.execute(f"copy {table} to {_literal(target / (table.split('.')[1] + '.parquet'))} "
                             f"(format parquet)")
        copy.execute("detach source")
    (target / FINGERPRINTS).write_text(json.dumps({"tables": record}, sort_keys=True), encoding="utf-8")
    temporary = analyst_dir / ".latest.switch"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(os.path.relpath(target, analyst_dir), temporary)
    os.replace(temporary, analyst_dir / "latest")
    return target
