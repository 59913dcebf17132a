"""Reading what a publication is built from, as plain data frames.

Everything a package shows comes from these frames; they are also saved with
the release (coordinating centre only), so a past publication can be rebuilt
from its own inputs and compared with its manifest's checksums.

The scored cases (one row per case and measure: 40 million at national
scale) are not held in memory: they are copied from the warehouse into the
release's inputs as Parquet, one file per site (``CaseFile``), and each
package reads its own site's file. A publication's memory is then one site's
cases per worker, not every case of the registry, and the snapshot a rebuild
needs is written by DuckDB without passing through pandas. A site whose cases
did not change since the last release is not copied again: its file is
linked from that release.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pandas as pd

CASE_COLUMNS = ["site_id", "case_id", "period", "operation_date", "measure_id", "is_event", "expected_probability"]
CASE_ORDER = "site_id, measure_id, operation_date, case_id"
CASES_FOLDER = "cases"         # one Parquet file per site: cases/site_id=<site, %-escaped>/data_0.parquet
LEGACY_CASES_FILE = "cases.parquet"   # releases published before the per-site files hold one file
FINGERPRINTS = "fingerprints.json"
SCHEMA_FILE = "schema.parquet"     # no rows: the columns' types, for a read that finds no file
HIVE = "hive_partitioning = true, hive_types = {'site_id': 'VARCHAR'}"


def _arrow_frame(relation) -> pd.DataFrame:
    """A query's result as the frame ``.df()`` gives, read through Arrow: DuckDB's ``.df()`` holds the whole
    materialised result beside the frame it builds; through Arrow the peak is the Arrow table."""
    result = relation.arrow()
    table = result.read_all() if hasattr(result, "read_all") else result
    frame = table.to_pandas(date_as_object=False)
    for column in frame.columns:   # .df() gives timestamps and dates in microseconds
        if pd.api.types.is_datetime64_dtype(frame[column]):
            frame[column] = frame[column].astype("datetime64[us]")
    return frame


def _literal(path: Path) -> str:
    """``path`` as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


_READERS: dict[int, duckdb.DuckDBPyConnection] = {}


def _reader() -> duckdb.DuckDBPyConnection:
    """This process's connection for reading case files (a forked worker opens its own: a DuckDB
    connection is not shared across a fork), one thread each since the workers already fill the cores."""
    pid = os.getpid()
    if pid not in _READERS:
        con = duckdb.connect()
        con.execute("set threads = 1")
        con.execute("set parquet_metadata_cache = true")
        _READERS[pid] = con
    return _READERS[pid]


def close_readers() -> None:
    """Close the case-file connections this process holds, before it forks workers: a child must
    not inherit a DuckDB database in whatever state its locks were at the fork. The next read opens
    a new one."""
    while _READERS:
        _READERS.popitem()[1].close()


def _fingerprint_sql(sql: str) -> str:
    """Each site's row count and the sum of its rows' 64-bit hashes: equal for equal rows in any order.
    Two different sets of a site's rows give the same pair with a chance of about 2**-64."""
    return (f"select site_id, count(*) as n, sum(hash({', '.join(CASE_COLUMNS[1:])}))::varchar as fingerprint "
            f"from ({sql}) group by site_id")


@dataclass(frozen=True)
class CaseFile:
    """The scored cases a publication is built from, on disk: one Parquet file per site under the
    folder ``path`` (or, in a release published before per-site files, the one file ``path``).

    Each site's file carries a fingerprint of its rows (``FINGERPRINTS``). A new publication copies
    only the sites whose rows changed since the previous release and links the files of the others
    (``copy_from(..., previous=)``): after one site resubmits a quarter, one site's cases are copied,
    not every case of the registry.
    """

    path: Path

    @classmethod
    def copy_from(cls, con: duckdb.DuckDBPyConnection, sql: str, parameters: list, path: Path,
                  previous: "CaseFile | None" = None) -> "CaseFile":
        """Write the rows of ``sql`` (``CASE_COLUMNS``) under the new folder ``path``, a file per site in
        ``CASE_ORDER``; take a site's file from ``previous`` when its rows there are the same."""
        path.mkdir(parents=True)
        fingerprints = {site: [n, fingerprint] for site, n, fingerprint
                        in con.execute(_fingerprint_sql(sql), parameters).fetchall()}
        reusable = previous.reusable(fingerprints) if previous is not None else {}
        changed = sorted(set(fingerprints) - set(reusable))
        columns = ", ".join(CASE_COLUMNS)
        if changed:
            only = "" if len(changed) == len(fingerprints) else "where site_id in (select unnest(?::varchar[]))"
            con.execute(f"copy (select {columns} from ({sql}) {only} order by {CASE_ORDER}) to {_literal(path)} "
                        f"(format parquet, partition_by (site_id))",
                        parameters + ([changed] if only else []))
        for files in reusable.values():
            for file in files:
                _link(file, path / file.parent.name / file.name)
        con.execute(f"copy (select {columns} from ({sql}) limit 0) to {_literal(path / SCHEMA_FILE)} "
                    f"(format parquet)", parameters)
        (path / FINGERPRINTS).write_text(json.dumps({"columns": CASE_COLUMNS, "sites": fingerprints}, indent=0,
                                                    sort_keys=True), encoding="utf-8")
        return cls(path)

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, path: Path) -> "CaseFile":
        """A case file holding ``frame`` (tests and rebuilds from frames)."""
        con = duckdb.connect()
        try:
            con.register("frame", frame[CASE_COLUMNS])
            return cls.copy_from(con, "select * from frame", [], path)
        finally:
            con.close()

    @classmethod
    def in_folder(cls, folder: Path) -> "CaseFile":
        """The case file of a release's inputs folder (per-site files, or the older single file)."""
        legacy = folder / LEGACY_CASES_FILE
        return cls(legacy if legacy.is_file() and not (folder / CASES_FOLDER).exists() else folder / CASES_FOLDER)

    @cached_property
    def _files(self) -> dict[str, list[Path]]:
        """Each site's Parquet files (the folder names are DuckDB's %-escaped hive partitions)."""
        if self.path.is_file():
            return {}
        return {unquote(d.name.split("=", 1)[1]): sorted(d.glob("*.parquet"))
                for d in sorted(self.path.iterdir()) if d.is_dir() and d.name.startswith("site_id=")}

    def _source(self, site_id: str | None = None) -> str:
        if self.path.is_file():
            return f"read_parquet({_literal(self.path)})"
        files = self._files.get(site_id, []) if site_id is not None else [
            f for files in self._files.values() for f in files]
        if not files:
            return f"read_parquet({_literal(self.path / SCHEMA_FILE)})"
        return f"read_parquet([{', '.join(_literal(f) for f in files)}], {HIVE})"

    def _query(self, sql: str, parameters: list | None = None, site_id: str | None = None) -> pd.DataFrame:
        return _arrow_frame(_reader().execute(sql.replace("CASES", self._source(site_id)), parameters or []))

    def fingerprints(self) -> dict[str, list]:
        """Each site's [row count, row-hash sum] as written (empty for the older single file)."""
        saved = self.path / FINGERPRINTS
        if self.path.is_file() or not saved.is_file():
            return {}
        known = json.loads(saved.read_text(encoding="utf-8"))
        return known["sites"] if known.get("columns") == CASE_COLUMNS else {}

    def reusable(self, fingerprints: dict[str, list]) -> dict[str, list[Path]]:
        """The files of the sites whose rows here have the ``fingerprints`` given (site -> [rows, hash])."""
        known = self.fingerprints()
        return {site: self._files[site] for site, print_ in fingerprints.items()
                if known.get(site) == print_ and self._files.get(site)}

    def site(self, site_id: str) -> pd.DataFrame:
        """One site's cases (``CASE_COLUMNS`` without the site), in ``CASE_ORDER``."""
        return self._query(f"select {', '.join(CASE_COLUMNS[1:])} from CASES where site_id = ? "
                           f"order by {CASE_ORDER}", [site_id], site_id)

    def events(self, period: str) -> pd.DataFrame:
        """The period's cases with an event, every site's, in ``CASE_ORDER``."""
        return self._query(f"select {', '.join(CASE_COLUMNS)} from CASES where is_event and period = ? "
                           f"order by {CASE_ORDER}", [period])

    def site_ids(self) -> list[str]:
        if not self.path.is_file():
            return sorted(self._files)
        return [r[0] for r in _reader().execute(f"select distinct site_id from {self._source()} order by 1").fetchall()]

    def case_owners(self):
        """Every (site, case number) pair, as Arrow record batches (the privacy check's case index)."""
        return _reader().execute(f"select distinct site_id, case_id from {self._source()} "
                                 f"where case_id is not null").arrow()

    def site_case_ids(self, site_id: str) -> list[str]:
        """One site's distinct case numbers (the privacy check's case index, a site at a time)."""
        return [r[0] for r in _reader().execute(f"select distinct case_id from {self._source(site_id)} "
                                                 f"where case_id is not null").fetchall()]

    def frame(self) -> pd.DataFrame:
        """Every case (small publications and tests only)."""
        return self._query(f"select {', '.join(CASE_COLUMNS)} from CASES order by {CASE_ORDER}")

    def save(self, folder: Path) -> "CaseFile":
        """This case file in the inputs folder ``folder`` (already there when it was written there)."""
        target = folder / (LEGACY_CASES_FILE if self.path.is_file() else CASES_FOLDER)
        if target.resolve() != self.path.resolve():
            folder.mkdir(parents=True, exist_ok=True)
            if self.path.is_file():
                shutil.copyfile(self.path, target)
            else:
                shutil.copytree(self.path, target, copy_function=_link)
        return CaseFile(target)


def _link(source, target) -> None:
    """``target`` as a hard link to the (never rewritten) file ``source``; a copy where links are not
    possible (another file system)."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


@dataclass
class PublicationInputs:
    period: str
    results: pd.DataFrame          # marts.mart_site_results, periods up to ``period``
    funnel_curves: pd.DataFrame    # marts.mart_funnel_limits
    cases: CaseFile                # marts.fct_case_risk, periods up to ``period``
    quality: pd.DataFrame          # site_id, period, status, completeness, open_queries, blocking_open
    models: pd.DataFrame           # current models with their quality
    sites: pd.DataFrame            # site_id, display_name, blinded_code
    measures: pd.DataFrame         # measure_id, label, direction
    submissions: pd.DataFrame      # current submissions: site_id, period, submission_id, file_checksum

    FRAMES = ("results", "funnel_curves", "quality", "models", "sites", "measures", "submissions")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.FRAMES:
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=False)
        self.cases.save(folder)
        (folder / "period.txt").write_text(self.period, encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "PublicationInputs":
        frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in cls.FRAMES}
        return cls(period=(folder / "period.txt").read_text(encoding="utf-8").strip(),
                   cases=CaseFile.in_folder(folder), **frames)


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                       [schema, table]).fetchone()[0] > 0


def latest_period(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("select max(period) from marts.mart_site_results where is_included").fetchone()
    return row[0] if row else None


def read_inputs(con: duckdb.DuckDBPyConnection, period: str, folder: Path,
                previous: CaseFile | None = None) -> PublicationInputs:
    """The period's inputs; the scored cases are copied to ``folder`` (the release's inputs snapshot), taking
    the files of sites whose cases are unchanged from ``previous`` (the last release's case file)."""
    open_queries = ("select site_id, period, count(*) filter (where status in ('open', 'reopened')) as open_queries, "
                    "count(*) filter (where status in ('open', 'reopened') and severity = 'blocking') as blocking_open "
                    "from quality.queries group by all") if _has_table(con, "quality", "queries") else (
                    "select site_id, period, count(*) as open_queries, "
                    "count(*) filter (where severity = 'blocking') as blocking_open from quality.findings group by all")
    quality = con.execute(
        f"select s.site_id, s.period, s.status, s.completeness, coalesce(q.open_queries, 0) as open_queries, "
        f"coalesce(q.blocking_open, 0) as blocking_open from quality.site_period_status s "
        f"left join ({open_queries}) q using (site_id, period) where s.period <= ? order by 1, 2", [period]).df()
    return PublicationInputs(
        period=period,
        results=con.execute("select * from marts.mart_site_results where period <= ? "
                            "order by site_id, measure_id, period", [period]).df(),
        funnel_curves=con.execute("select * from marts.mart_funnel_limits where period <= ? "
                                  "order by period, measure_id, expected", [period]).df(),
        cases=CaseFile.copy_from(con, "select * from marts.fct_case_risk where period <= ?", [period],
                                 folder / CASES_FOLDER, previous),
        quality=quality,
        models=con.execute("select measure_id, model_version, cases, events, c_statistic, calibration_intercept, "
                           "calibration_slope, hosmer_lemeshow_p, brier_score, risk_adjusted "
                           "from models.model_versions where is_current order by measure_id").df(),
        sites=con.execute("select site_id, display_name, blinded_code from registry.sites order by site_id").df(),
        measures=con.execute("select measure_id, label, direction from registry.measures order by measure_id").df(),
        submissions=con.execute(
            "select c.site_id, c.period, c.submission_id, s.file_checksum, s.original_name "
            "from intake.current_submission_periods c join intake.submissions s using (submission_id) "
            "where c.period <= ? order by 1, 2", [period]).df(),
    )
