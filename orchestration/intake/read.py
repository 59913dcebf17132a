"""Reading a submitted file into a DuckDB table of text columns.

Every cell is read as text first; casting to the dictionary's types happens
in SQL afterwards so that a cell that cannot be cast becomes a finding on its
row instead of failing the file. CSV dialect and encoding are detected here:
UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order mark and
Latin-1; comma, semicolon, tab or pipe delimiters.
"""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

DELIMITERS = [",", ";", "\t", "|"]
SNIFF_BYTES = 64 * 1024


class UnreadableFile(ValueError):
    """The file cannot be read as a table; the message says why, for the receipt."""


@dataclass(frozen=True)
class TextTable:
    """A submission read into ``table`` (columns c0..cn plus ``row_number``)."""

    table: str
    headers: list[str]
    rows: int
    encoding: str
    delimiter: str | None
    file_format: str


def detect_encoding(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def detect_delimiter(header_line: str) -> str:
    counts = {d: next(csv.reader([header_line], delimiter=d), []).__len__() for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


def _utf8_copy(path: Path, encoding: str, workdir: Path) -> Path:
    """DuckDB reads UTF-8; other encodings are transcoded to a temporary copy."""
    target = workdir / "transcoded.csv"
    with open(path, encoding=encoding, newline="") as source, open(target, "w", encoding="utf-8", newline="") as out:
        while chunk := source.read(1 << 20):
            out.write(chunk)
    return target


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str, workdir: Path) -> TextTable:
    encoding = detect_encoding(path)
    if encoding in ("latin-1", "utf-16"):
        path = _utf8_copy(path, encoding, workdir)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        first_line = handle.readline()
    if not first_line.strip():
        raise UnreadableFile("the file is empty: no header line")
    delimiter = detect_delimiter(first_line.rstrip("\r\n"))
    headers = next(csv.reader([first_line.rstrip("\r\n")], delimiter=delimiter))
    names = [f"c{i}" for i in range(len(headers))]
    try:
        con.execute(
            f"create or replace temp table {table} as "
            "select row_number() over () as row_number, * from read_csv(?, header=false, skip=1, delim=?, "
            "quote='\"', escape='\"', null_padding=true, parallel=false, "
            "auto_detect=false, columns=?)",
            [str(path), delimiter, {n: "VARCHAR" for n in names}],
        )
    except duckdb.Error as exc:
        raise UnreadableFile(f"the file is not a readable CSV table: {str(exc).splitlines()[0]}") from exc
    rows = con.execute(f"select count(*) from {table}").fetchone()[0]
    return TextTable(table, headers, rows, encoding, delimiter, "csv")


def _cell_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _load_rows(con: duckdb.DuckDBPyConnection, table: str, headers: list, rows: list[list]) -> None:
    import pyarrow as pa

    names = [f"c{i}" for i in range(len(headers))]
    columns = {"row_number": pa.array(range(1, len(rows) + 1), pa.int64())}
    for i, name in enumerate(names):
        columns[name] = pa.array([_cell_text(r[i]) if i < len(r) else None for r in rows], pa.string())
    arrow_table = pa.table(columns)
    con.register("_incoming", arrow_table)
    con.execute(f"create or replace temp table {table} as select * from _incoming")
    con.unregister("_incoming")


def _read_xlsx(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> TextTable:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise UnreadableFile(f"the file is not a readable Excel workbook: {exc}") from exc
    try:
        sheet = book.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    if not rows:
        raise UnreadableFile("the workbook's first sheet is empty: no header row")
    headers = [_cell_text(h) or "" for h in rows[0]]
    _load_rows(con, table, headers, rows[1:])
    return TextTable(table, headers, len(rows) - 1, "xlsx", None, "xlsx")


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> TextTable:
    try:
        rel = con.sql("select * from read_parquet(?)", params=[str(path)])
        headers = list(rel.columns)
        casts = ", ".join(f'cast("{h}" as varchar) as c{i}' for i, h in enumerate(headers))
        con.execute(f"create or replace temp table {table} as select row_number() over () as row_number, {casts} "
                    "from read_parquet(?)", [str(path)])
    except duckdb.Error as exc:
        raise UnreadableFile(f"the file is not a readable Parquet file: {str(exc).splitlines()[0]}") from exc
    rows = con.execute(f"select count(*) from {table}").fetchone()[0]
    return TextTable(table, headers, rows, "parquet", None, "parquet")


def read_text_table(con: duckdb.DuckDBPyConnection, path: Path, table: str = "incoming_text") -> TextTable:
    """Read ``path`` (CSV, XLSX or Parquet, by its suffix) into a temp table of text."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(con, path, table)
    if suffix == ".parquet":
        return _read_parquet(con, path, table)
    if suffix in (".csv", ".txt", ".tsv", ""):
        with tempfile.TemporaryDirectory(prefix="cqi-read-") as workdir:
            return _read_csv(con, path, table, Path(workdir))
    raise UnreadableFile(f"files of type {suffix!r} are not accepted: send CSV, XLSX or Parquet")
