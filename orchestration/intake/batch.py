"""Loading the files of one intake run together: one SQL pass, one transaction.

Reading and judging a file as a whole (encoding, dialect, headers, limits)
happens file by file in ``receive.py``; what a file then holds is appended to
one staging table of text cells keyed by (file_index, row_number), with the
dictionary's variables as columns. Trimming, casting, pseudonymising, cell
findings and the other-site check then run once over the whole batch, and
every submission of the batch is committed in one transaction in the order
the files were received (the ledger's sequence decides which submission of a
site-period is current).

Why: each of those wide statements costs tens of milliseconds to plan and
run whatever the row count, so running them per file made fixed costs
dominate (about 120 ms a file, 96 s for a million cases in 640 files); once
per batch they cost that once. A batch is bounded by bytes
(``receive.BATCH_BYTES``), so memory stays bounded at any scale. If a batch
fails for a reason in the data (not the warehouse), its files are loaded
again one at a time, so that one bad file is rejected and the others are not
held back (``receive.load_archived_files``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ..registry import Registry
from .archive import ArchivedFile
from .cast import MAX_FINDING_VALUE, cast_findings_sql, clean_cell, period_expression, run_projection, typed_columns
from .receipts import Receipt

MAX_LISTED_PROBLEMS = 10_000
# A row is loaded when it has a case number and a period, and is not a last row cut off by a truncated file
# (its missing fields are an artefact of the cut, not the case).
LOADABLE = "case_id is not null and period is not null and row_number is distinct from truncated_row"


@dataclass
class StagedFile:
    """A file read, mapped and accepted as a whole, waiting in the batch."""

    index: int
    archived: ArchivedFile
    receipt: Receipt
    declared_period: str | None
    decimal_comma: bool
    width: int
    truncated_row: int | None = None
    truncated_fields: int | None = None


def batch_columns(registry: Registry) -> dict[str, str]:
    """Variable -> column of the staging table (the dictionary's order)."""
    return {variable.name: f"c{i}" for i, variable in enumerate(registry.variables)}


@dataclass
class Batch:
    """Staged files of one run, loaded together (``stage``, then ``insert`` in the caller's transaction)."""

    con: duckdb.DuckDBPyConnection
    registry: Registry
    secret: bytes
    files: list[StagedFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        columns = ", ".join(f"{c} varchar" for c in batch_columns(self.registry).values())
        self.con.execute(f"create or replace temp table batch_clean (file_index integer, row_number bigint, "
                         f"decimal_comma boolean, declared_period varchar, truncated_row bigint, {columns})")

    def add(self, staged: StagedFile, text_table: str, file_columns: dict[str, str]) -> None:
        """Append a file's text table (``file_columns``: variable -> its column there) to the batch."""
        period = f"'{staged.declared_period}'" if staged.declared_period else "null"
        run_projection(self.con, f"insert into batch_clean select {staged.index}, row_number, "
                                 f"{staged.decimal_comma}, {period}, {staged.truncated_row or 'null'}, "
                                 f"{self._cells(file_columns)} from {text_table}")
        self.files.append(staged)

    def add_group(self, files: list[tuple[StagedFile, int]], text_table: str, file_columns: dict[str, str]) -> None:
        """Append files read together (``read.read_csv_group``: clean cells): (file, its first rowid) each."""
        insert_rows(self.con, "group_index", {"filename": "varchar", "file_index": "integer",
                                              "first_rowid": "bigint", "declared_period": "varchar",
                                              "truncated_row": "bigint"},
                    [[str(f.archived.path), f.index, first, f.declared_period, f.truncated_row] for f, first in files])
        cells = ", ".join(f"g.{file_columns[name]}" if name in file_columns else "null"
                          for name in batch_columns(self.registry))
        self.con.execute(f"insert into batch_clean select i.file_index, g.rowid - i.first_rowid + 1, "
                         f"{files[0][0].decimal_comma}, i.declared_period, i.truncated_row, {cells} "
                         f"from {text_table} g join group_index i using (filename)")
        self.con.execute("drop table group_index")
        self.files.extend(staged for staged, _ in files)

    def _cells(self, file_columns: dict[str, str]) -> str:
        """The batch's columns from a file's text columns: blanks trimmed, empty cells NULL (``clean_cell``)."""
        return ", ".join(clean_cell(file_columns[name]) if name in file_columns else "null"
                         for name in batch_columns(self.registry))

    def stage(self) -> list[tuple[StagedFile, list[str]]]:
        """Check, cast, pseudonymise and collect findings for every staged file.

        Returns the files taken out of the batch because their rows name
        another site, with (up to five of) the site ids they name.
        """
        con, registry = self.con, self.registry
        columns = batch_columns(registry)
        insert_rows(con, "batch_files", {"file_index": "integer", "site_id": "varchar",
                                         "truncated_fields": "integer", "width": "integer"},
                    [[f.index, f.archived.site_id, f.truncated_fields, f.width] for f in self.files])
        rejected = self._other_sites(columns["site_id"])
        if not self.files:
            return rejected

        op_period = period_expression("operation_date", registry.calendar.period_length)
        con.execute("create or replace temp table batch_findings (file_index integer, row_number bigint, "
                    "field varchar, value varchar, problem varchar)")
        both = len({f.decimal_comma for f in self.files}) == 2
        for decimal_comma in sorted({f.decimal_comma for f in self.files}):
            typed = typed_columns(registry, columns, self.secret, decimal_comma)
            selects = ", ".join(f'{sql} as "{name}"' for name, sql in typed.items())
            verb = "insert into batch_rows" if decimal_comma and both else "create or replace temp table batch_rows as"
            run_projection(con, f"{verb} select *, coalesce({op_period}, declared_period) as period from ("
                                f"select file_index, row_number, truncated_row, declared_period, {selects} "
                                f"from batch_clean where decimal_comma = {decimal_comma})")
            findings = cast_findings_sql(registry, columns, "batch_clean", decimal_comma,
                                         keys="file_index, row_number",
                                         where=f"decimal_comma = {decimal_comma} and row_number is distinct from "
                                               f"truncated_row")
            con.execute(f"insert into batch_findings {findings}")
        con.execute("drop table batch_clean")
        con.execute(
            f"insert into batch_findings "
            f"select file_index, row_number, 'case_id', null, "
            f"'is missing: a row without a case number cannot be loaded' from batch_rows where case_id is null "
            f"union all select file_index, row_number, 'operation_date', null, "
            f"'gives no reporting period: the row cannot be loaded' "
            f"from batch_rows where case_id is not null and period is null "
            f"union all select r.file_index, r.row_number, '(row)', left(r.case_id, {MAX_FINDING_VALUE}), "
            f"'has ' || f.truncated_fields || ' of ' || f.width || ' fields and the file ends there: it was cut "
            f"off, so the row was not loaded; send the complete file' "
            f"from batch_rows r join batch_files f using (file_index) where r.row_number = r.truncated_row")
        self._fill_receipts()
        return rejected

    def _other_sites(self, site_column: str) -> list[tuple[StagedFile, list[str]]]:
        """Files whose rows name another site are rejected whole (the folder is the site's account)."""
        found = self.con.execute(
            f"select file_index, list(name order by name)[1:5] from ("
            f"select distinct b.file_index, left(b.{site_column}, 40) as name from batch_clean b "
            f"join batch_files f using (file_index) where b.{site_column} <> f.site_id) group by 1").fetchall()
        if not found:
            return []
        by_index = {f.index: f for f in self.files}
        indexes = ", ".join(str(index) for index, _ in found)
        self.con.execute(f"delete from batch_clean where file_index in ({indexes})")
        self.con.execute(f"delete from batch_files where file_index in ({indexes})")
        self.files = [f for f in self.files if f.index not in {index for index, _ in found}]
        return [(by_index[index], names) for index, names in found]

    def _fill_receipts(self) -> None:
        counts = {index: (loaded, periods) for index, loaded, periods in self.con.execute(
            f"select file_index, count(*), list(distinct period order by period) from batch_rows "
            f"where {LOADABLE} group by 1").fetchall()}
        problems: dict[int, list[dict]] = {}
        found: dict[int, int] = {}
        for index, row_number, field_name, value, problem in self.con.execute(
                "select file_index, row_number, field, value, problem from batch_findings "
                "order by file_index, row_number, field").fetchall():
            found[index] = found.get(index, 0) + 1
            listed = problems.setdefault(index, [])
            if len(listed) < MAX_LISTED_PROBLEMS:
                listed.append(dict(row_number=row_number, field=field_name, value=value, problem=problem))
        for staged in self.files:
            receipt = staged.receipt
            receipt.rows_loaded, receipt.periods = counts.get(staged.index, (0, []))
            receipt.rows_rejected = receipt.rows_received - receipt.rows_loaded
            receipt.problems = problems.get(staged.index, [])
            receipt.status = "accepted_with_findings" if found.get(staged.index) else "accepted"

    def insert(self, column_list: str) -> None:
        """Insert the batch's rows and findings (inside the caller's transaction)."""
        con = self.con
        insert_rows(con, "batch_ids", {"file_index": "integer", "submission_id": "varchar", "file_checksum": "varchar"},
                    [[f.index, f.receipt.submission_id, f.archived.checksum] for f in self.files])
        con.execute(
            f"insert into raw.cases ({column_list}, submission_id, file_checksum, row_number, period) "
            f"select {column_list}, i.submission_id, i.file_checksum, r.row_number, r.period "
            f"from batch_rows r join batch_ids i using (file_index) where {LOADABLE}")
        con.execute("insert into intake.cell_findings select i.submission_id, c.row_number, c.field, c.value, "
                    "c.problem from batch_findings c join batch_ids i using (file_index)")

    def drop(self) -> None:
        for table in ("batch_clean", "batch_rows", "batch_findings", "batch_files", "batch_ids", "group_index"):
            self.con.execute(f"drop table if exists {table}")


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], rows: list[list]) -> None:
    """(Re)create temp table ``table`` (name -> SQL type) holding ``rows``, in one statement.

    Row-by-row ``executemany`` costs about a millisecond a row in DuckDB;
    an Arrow table is inserted at once.
    """
    import pyarrow as pa

    con.execute(f"create or replace temp table {table} ({', '.join(f'{n} {t}' for n, t in columns.items())})")
    if not rows:
        return
    data = pa.table({name: pa.array([row[i] for row in rows]) for i, name in enumerate(columns)})
    con.register("_rows", data)
    try:
        con.execute(f"insert into {table} select * from _rows")
    finally:
        con.unregister("_rows")
