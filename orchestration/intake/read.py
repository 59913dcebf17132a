"""Reading a submitted file into a DuckDB table of text columns.

Every cell is read as text first; casting to the dictionary's types happens
in SQL afterwards so that a cell that cannot be cast becomes a finding on its
row instead of failing the file. CSV dialect and encoding are detected here:
UTF-8 (with or without a byte-order mark), UTF-16 (with a byte-order mark, or
without one when every other byte is zero), UTF-32 with a byte-order mark and
Latin-1; comma, semicolon, tab or pipe delimiters; any mix of line endings.

Sites send every kind of broken or hostile file, so a file is inspected before
a parser sees it, and anything that would make reading unbounded or ambiguous
is refused with a reason the abstractor can act on (``UnreadableFile``):

- the content must match the name: a gzip, zip, PDF or old ``.xls`` file named
  ``.csv`` is refused, and so is a CSV named ``.xlsx``;
- a CSV with NUL bytes, binary content, a quotation mark never closed, a row
  with more fields than the header (values can no longer be matched to their
  columns), a row longer than ``max_line_bytes`` (one enormous cell), more than
  ``max_columns`` columns or ``max_rows`` rows is refused. DuckDB reads with
  ``max_line_size`` set, so a 50 MB cell is refused without being held whole;
- a workbook is checked as a zip archive before openpyxl opens it: macros
  (``.xlsm`` or a ``vbaProject.bin``), encryption, a declared uncompressed size
  over ``max_unzipped_bytes`` or a member compressed more than ``max_zip_ratio``
  to one (a zip bomb) are refused without decompressing anything. Formulas are
  never evaluated: the values Excel cached when it last saved are read, and the
  receipt says how many cells held formulas. The first sheet is read; other
  sheets are named in the receipt;
- a Parquet file with nested (list, struct, map) columns is refused: registry
  files are flat tables.

Short rows (fewer fields than the header) are padded with empty cells, which
the quality checks then report as missing; a file that does not end with a
line break and whose last row is short was cut off, and that row is reported
and not loaded (``TextTable.truncated_row``).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import duckdb

from .cast import clean_cell, run_projection

DELIMITERS = [",", ";", "\t", "|"]
SNIFF_BYTES = 64 * 1024
CHUNK = 1 << 20
MAX_QUOTED_CHARS = 80

# Leading bytes of formats that are not a CSV, and what to call them.
MAGIC = [
    (b"\x1f\x8b", "a gzip-compressed file", "send the CSV uncompressed"),
    (b"PK\x03\x04", "a zip archive (an Excel workbook or a zipped file)",
     "name an Excel workbook .xlsx, or send the CSV unzipped"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel 97-2003 workbook (.xls) or a password-protected one",
     "save it as .xlsx (without a password) or CSV"),
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"%PDF", "a PDF document", "send the data as CSV, XLSX or Parquet"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "send the CSV uncompressed"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "send the CSV uncompressed"),
    (b"BZh", "a bzip2-compressed file", "send the CSV uncompressed"),
]
NESTED_TYPE = re.compile(r"(\[\]|\[\d+\]$|^(STRUCT|MAP|UNION)\()")
SMALL_MEMBER = 1 << 20


class UnreadableFile(ValueError):
    """The file cannot be read as a table; the message says why, for the receipt."""


@dataclass(frozen=True)
class Limits:
    """What a file may hold before it is refused (from the registry's policy)."""

    max_columns: int = 1000
    max_line_bytes: int = 1 << 20
    max_rows: int = 2_000_000
    max_unzipped_bytes: int = 1 << 30
    max_zip_ratio: int = 100

    @classmethod
    def of(cls, policy) -> "Limits":
        return cls(**{name: getattr(policy, name) for name in cls.__dataclass_fields__ if hasattr(policy, name)})


@dataclass(frozen=True)
class TextTable:
    """A submission read into ``table`` (columns c0..cn plus ``row_number``)."""

    table: str
    headers: list[str]
    rows: int
    encoding: str
    delimiter: str | None
    file_format: str
    notes: tuple[str, ...] = ()
    truncated_row: int | None = None      # the last row, cut off (no final line break, too few fields)
    truncated_fields: int = 0


def quoted(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """``value`` as a quoted, escaped, shortened literal: safe to show in a receipt."""
    text = str(value)
    shown = repr(text[:limit])
    return shown + (f" (… {len(text)} characters)" if len(text) > limit else "")


# --- content sniffing --------------------------------------------------------

def _head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _other_format(head: bytes) -> tuple[str, str] | None:
    for magic, what, advice in MAGIC:
        if head.startswith(magic):
            return what, advice
    return None


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text of Latin characters has a zero in every other byte."""
    sample = head[: len(head) - len(head) % 2]
    if len(sample) < 8:
        return None
    even_zeros = sample[0::2].count(0) / (len(sample) / 2)
    odd_zeros = sample[1::2].count(0) / (len(sample) / 2)
    if odd_zeros > 0.4 and even_zeros < 0.05:
        return "utf-16-le"
    if even_zeros > 0.4 and odd_zeros < 0.05:
        return "utf-16-be"
    return None


def detect_encoding(path: Path) -> str:
    """The text encoding of a CSV: byte-order mark, zero pattern, else UTF-8 if valid, else Latin-1."""
    head = _head(path)
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    bomless = _utf16_without_bom(head)
    if bomless:
        return bomless
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def detect_delimiter(header_line: str) -> str:
    counts = {d: len(next(csv.reader([header_line], delimiter=d), [])) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


# --- CSV ----------------------------------------------------------------------

@dataclass
class _Scan:
    first_nul: int = -1
    quotes: int = 0
    has_cr: bool = False
    ends_with_newline: bool = True
    control_share: float = 0.0
    size: int = 0
    tail: bytes = b""
    longest_line: int = 0
    long_line_number: int = 0     # the first line over the limit (counting line feeds), 0 if none


CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"


LINE_BREAK = re.compile(rb"[\r\n]")


def _scan(path: Path, tail_bytes: int, max_line: int) -> _Scan:
    """One streaming pass: NUL bytes, quotation marks, carriage returns, line lengths, the tail.

    Line lengths are measured here, in bounded memory, because DuckDB quotes
    the whole offending line in its error: a 50 MB line would become a 50 MB
    message (and copies of it) before it could be refused.
    """
    scan = _Scan()
    head = _head(path)
    if head:
        scan.control_share = sum(head.count(bytes([b])) for b in CONTROL_BYTES) / len(head)
    too_long = re.compile(rb"[^\r\n]{%d}" % (max_line + 1))
    tail = bytearray()
    run = line_feeds = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            if scan.first_nul < 0 and (at := chunk.find(b"\0")) >= 0:
                scan.first_nul = scan.size + at
            scan.quotes += chunk.count(b'"')
            scan.has_cr = scan.has_cr or b"\r" in chunk
            first = LINE_BREAK.search(chunk)
            if first is None:
                run += len(chunk)
            else:
                last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
                longest = run + first.start()
                if max_line < len(chunk) and too_long.search(chunk, first.end(), last):
                    longest = max(longest, max_line + 1)
                if longest > max_line and not scan.long_line_number:
                    scan.long_line_number = line_feeds + 1
                scan.longest_line = max(scan.longest_line, longest)
                run = len(chunk) - last - 1
            if run > max_line and not scan.long_line_number:
                scan.long_line_number = line_feeds + 1
            scan.longest_line = max(scan.longest_line, run)
            line_feeds += chunk.count(b"\n")
            scan.size += len(chunk)
            tail = (tail + chunk)[-tail_bytes:]
    scan.tail = bytes(tail)
    scan.ends_with_newline = scan.tail.endswith((b"\n", b"\r")) or scan.size == 0
    return scan


def _utf8_copy(path: Path, encoding: str, workdir: Path, universal_newlines: bool = False) -> Path:
    """DuckDB reads UTF-8 with one kind of line ending; other files get a transcoded temporary copy."""
    target = workdir / ("normalised.csv" if universal_newlines else "transcoded.csv")
    try:
        with open(path, encoding=encoding, newline=None if universal_newlines else "") as source, \
                open(target, "w", encoding="utf-8", newline="") as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"the file is not valid {encoding.upper()} text (byte {exc.start} of a block "
                             "cannot be decoded): save it as UTF-8 CSV") from exc
    return target


def _check_text(scan: _Scan, limits: Limits) -> None:
    if scan.control_share > 0.05:
        raise UnreadableFile("the file is not text (it holds binary data): send CSV, XLSX or Parquet")
    if scan.first_nul >= 0:
        raise UnreadableFile(f"the file holds NUL bytes (the first at byte {scan.first_nul}), so it is not a plain "
                             "text CSV: save it again as 'CSV UTF-8'")
    if scan.long_line_number:
        raise UnreadableFile(f"line {scan.long_line_number} is longer than the limit of {limits.max_line_bytes} "
                             "bytes (one row, or one enormous cell): check that the file is a registry extract")
    if scan.quotes % 2:
        raise UnreadableFile('a quotation mark (") is opened and never closed: check the cells that contain quotes')


def _duckdb_reason(message: str, limits: Limits, header_fields: int) -> str:
    line = re.search(r"CSV Error on Line: (\d+)", message)
    where = f"line {line.group(1)}" if line else "a line"
    if "Maximum line size" in message:
        return (f"{where} is longer than the limit of {limits.max_line_bytes} bytes (one row, or one enormous cell): "
                "check that the file is a registry extract")
    if "Expected Number of Columns" in message:
        return (f"{where} has more fields than the header's {header_fields}: a delimiter inside an unquoted value "
                "shifts the row, so its values cannot be matched to their columns; quote such values")
    if "unterminated quote" in message:
        return f'{where} has a quotation mark (") that is not closed properly; quote whole values as "text"'
    first = message.splitlines()[0] if message else "unknown error"
    return f"the file is not a readable CSV table: {first[:200]}"


def _read_header(path: Path, limits: Limits) -> str:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        first_line = handle.readline(limits.max_line_bytes + 1)
    if len(first_line) > limits.max_line_bytes:
        raise UnreadableFile(f"the header line is longer than the limit of {limits.max_line_bytes} bytes")
    return first_line


def _csv_into(con, path: Path, table: str, delimiter: str, width: int, limits: Limits) -> None:
    names = [f"c{i}" for i in range(width)]
    con.execute(
        f"create or replace temp table {table} as "
        "select row_number() over () as row_number, * from read_csv(?, header=false, skip=1, delim=?, "
        "quote='\"', escape='\"', null_padding=true, parallel=false, auto_detect=false, "
        "max_line_size=?, columns=?)",
        [str(path), delimiter, limits.max_line_bytes, {n: "VARCHAR" for n in names}],
    )


def _short_last_row(scan: _Scan, delimiter: str, width: int) -> int:
    """How many fields the last line holds, if the file does not end with a line break."""
    if scan.ends_with_newline or not scan.tail:
        return width
    last = scan.tail.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rsplit(b"\n", 1)[-1]
    text = last.decode("utf-8", errors="replace")
    return len(next(csv.reader([text], delimiter=delimiter), []))


@dataclass(frozen=True)
class CsvPlan:
    """A CSV inspected and judged readable: what DuckDB needs to read it, and what it found."""

    path: Path               # the file DuckDB reads: the original, or a UTF-8 copy
    headers: list[str]
    delimiter: str
    encoding: str
    scan: _Scan
    notes: tuple[str, ...] = ()


def plan_csv(path: Path, limits: Limits, workdir: Path | None) -> CsvPlan | None:
    """Inspect a CSV before any parser sees it; raises ``UnreadableFile`` with the reason.

    Without a ``workdir`` a file that needs a transcoded copy (not UTF-8)
    returns None: it is read on its own (``read_text_table``).
    """
    head = _head(path)
    other = _other_format(head)
    if other and not head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableFile(f"the file is named {path.suffix or '(no suffix)'} but is {other[0]}: {other[1]}")
    encoding = detect_encoding(path)
    if encoding not in ("utf-8", "utf-8-sig"):
        if workdir is None:
            return None
        path = _utf8_copy(path, encoding, workdir)
    scan = _scan(path, tail_bytes=min(limits.max_line_bytes, 1 << 20), max_line=limits.max_line_bytes)
    _check_text(scan, limits)
    if scan.size == 0 or (scan.size <= len(scan.tail) and not scan.tail.strip(b" \t\r\n\xef\xbb\xbf")):
        raise UnreadableFile("the file is empty: no header line")
    first_line = _read_header(path, limits)
    if not first_line.strip():
        raise UnreadableFile("the first line is empty: the header must be on the first line")
    delimiter = detect_delimiter(first_line.rstrip("\r\n"))
    headers = next(csv.reader([first_line.rstrip("\r\n")], delimiter=delimiter))
    if len(headers) > limits.max_columns:
        raise UnreadableFile(f"the header has {len(headers)} columns, over the limit of {limits.max_columns}: "
                             "send the registry's columns only")
    return CsvPlan(path, headers, delimiter, encoding, scan)


def csv_text_table(plan: CsvPlan, table: str, rows: int, limits: Limits) -> TextTable:
    """The ``TextTable`` of a CSV read into ``table`` with ``rows`` data rows (limits checked here)."""
    if rows > limits.max_rows:
        raise UnreadableFile(f"the file has {rows} rows, over the limit of {limits.max_rows}: split it by period")
    notes = list(plan.notes)
    truncated, fields = None, len(plan.headers)
    if rows and not plan.scan.ends_with_newline:
        fields = _short_last_row(plan.scan, plan.delimiter, len(plan.headers))
        if fields < len(plan.headers):
            truncated = rows
            notes.append(f"the file does not end with a line break and its last row has {fields} of "
                         f"{len(plan.headers)} fields: it seems cut off, so that row was not loaded")
    return TextTable(table, plan.headers, rows, plan.encoding, plan.delimiter, "csv", tuple(notes), truncated,
                     fields)


def read_csv_group(con: duckdb.DuckDBPyConnection, plans: list[CsvPlan], table: str, limits: Limits) -> dict[str, tuple[int, int]]:
    """Read several CSVs of one dialect and width into ``table`` with one scan, their cells clean.

    ``table`` holds ``filename`` and the text columns, each cell already
    trimmed and NULL when empty (``cast.clean_cell``), in the scan's order
    (the files' order and their rows' order): a row's ``rowid`` is its
    position in the whole scan. Returns, per file name, (first rowid, data
    rows): the file's row number is ``rowid - first + 1``. Raises
    ``duckdb.Error`` if any file cannot be parsed; its reason is found by
    reading files alone.

    Why in one statement, and no ``row_number() over ()``: the window held
    every text cell of the scan before writing them (2.3 s of 5.4 s for the
    million cases of M), and cleaning the cells in a second copy cost 3 s
    more; the table keeps the insertion order, so ``rowid`` is that number.
    """
    width = len(plans[0].headers)
    names = {f"c{i}": "VARCHAR" for i in range(width)}
    cells = ", ".join(f"{clean_cell(name)} as {name}" for name in names)
    run_projection(
        con,
        f"create or replace temp table {table} as select filename, {cells} from read_csv(?, header=false, "
        "skip=1, delim=?, quote='\"', escape='\"', null_padding=true, parallel=false, auto_detect=false, "
        "max_line_size=?, columns=?, filename=true)",
        [[str(p.path) for p in plans], plans[0].delimiter, limits.max_line_bytes, names])
    return {name: (first, rows) for name, first, rows in con.execute(
        f"select filename, min(rowid), count(*) from {table} group by 1").fetchall()}


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str, workdir: Path, limits: Limits) -> TextTable:
    plan = plan_csv(path, limits, workdir)
    path, notes = plan.path, []
    try:
        _csv_into(con, path, table, plan.delimiter, len(plan.headers), limits)
    except duckdb.Error as exc:
        if not plan.scan.has_cr or "invalid state" not in str(exc):
            raise UnreadableFile(_duckdb_reason(str(exc), limits, len(plan.headers))) from exc
        # Mixed line endings (\r\n, \n, \r): read a copy with one kind.
        path = _utf8_copy(path, "utf-8-sig", workdir, universal_newlines=True)
        try:
            _csv_into(con, path, table, plan.delimiter, len(plan.headers), limits)
        except duckdb.Error as again:
            raise UnreadableFile(_duckdb_reason(str(again), limits, len(plan.headers))) from again
        notes.append("the file mixes line endings (\\r\\n, \\n, \\r); they were read as one kind")
    rows = con.execute(f"select count(*) from {table}").fetchone()[0]
    return csv_text_table(dataclasses.replace(plan, notes=tuple(notes)), table, rows, limits)


# --- XLSX ---------------------------------------------------------------------

def _cell_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _count_formulas(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> int:
    """Formula cells (``<f>`` elements) in the worksheets, streamed, never evaluated."""
    pattern = re.compile(rb"<(?:\w{1,8}:)?f[\s>/]")
    count = 0
    for info in members:
        carry = b""
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                data = carry + chunk
                keep = max(len(data) - 16, 0)   # a tag starting here may continue in the next chunk
                count += sum(1 for m in pattern.finditer(data) if m.start() < keep)
                carry = data[keep:]
        count += len(pattern.findall(carry))
    return count


def inspect_workbook(path: Path, limits: Limits) -> list[str]:
    """Refuse a workbook that is not one, holds macros, is encrypted or is a zip bomb.

    Reads only the zip's directory (declared sizes) before anything is
    decompressed; returns notes for the receipt.
    """
    head = _head(path, 8)
    if not head.startswith(b"PK\x03\x04"):
        other = _other_format(head)
        if other:
            raise UnreadableFile(f"the file is named {path.suffix} but is {other[0]}: {other[1]}")
        raise UnreadableFile(f"the file is named {path.suffix} but is not an Excel workbook (it looks like plain "
                             "text, perhaps a CSV): name a CSV .csv, or save the sheet as an Excel workbook")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableFile(f"the file is not a readable Excel workbook (damaged zip: {exc})") from exc
    with archive:
        members = archive.infolist()
        names = {info.filename.lower() for info in members}
        if any(name.endswith("vbaproject.bin") for name in names):
            raise UnreadableFile("the workbook contains macros: macro-enabled workbooks are not accepted; "
                                 "save it as a plain Excel workbook (.xlsx)")
        if any(info.flag_bits & 0x1 for info in members) or "encryptedpackage" in names:
            raise UnreadableFile("the workbook is password-protected: send it without a password")
        total = sum(info.file_size for info in members)
        if total > limits.max_unzipped_bytes:
            raise UnreadableFile(f"the workbook unpacks to {total} bytes, over the limit of "
                                 f"{limits.max_unzipped_bytes}: split it, or send CSV")
        for info in members:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > SMALL_MEMBER and ratio > limits.max_zip_ratio:
                raise UnreadableFile(f"the workbook is compressed {ratio:.0f} to 1, more than any real workbook "
                                     f"(limit {limits.max_zip_ratio}): refused as a possible zip bomb")
        if "xl/workbook.xml" not in names:
            raise UnreadableFile("the file is a zip archive but not an Excel workbook: send CSV, XLSX or Parquet")
        sheets = [m for m in members if re.fullmatch(r"xl/worksheets/[^/]+\.xml", m.filename, re.IGNORECASE)]
        formulas = _count_formulas(archive, sheets)
    if formulas:
        return [f"{formulas} cells hold formulas: they were not calculated; the values Excel saved with the file "
                "were read (a formula never calculated reads as empty)"]
    return []


def _read_xlsx(con: duckdb.DuckDBPyConnection, path: Path, table: str, limits: Limits) -> TextTable:
    import openpyxl

    notes = inspect_workbook(path, limits)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise UnreadableFile(f"the file is not a readable Excel workbook: {str(exc)[:200]}") from exc
    try:
        if not book.worksheets:
            raise UnreadableFile("the workbook has no worksheet")
        sheet = book.worksheets[0]
        others = [s.title for s in book.worksheets[1:]]
        if others:
            notes.append(f"only the first sheet ({quoted(sheet.title)}) was read; other sheets were ignored: "
                         + ", ".join(quoted(t) for t in others))
        sheet.reset_dimensions()  # a declared size of A1:XFD1048576 must not make it pad every row
        headers, columns, rows, wider = _sheet_columns(sheet, limits)
    except UnreadableFile:
        raise
    except Exception as exc:
        raise UnreadableFile(f"the workbook's first sheet cannot be read: {str(exc)[:200]}") from exc
    finally:
        book.close()
    if headers is None:
        raise UnreadableFile("the workbook's first sheet is empty: no header row")
    if wider:
        notes.append(f"{wider} rows have values to the right of the last header; those cells were ignored")
    _load_columns(con, table, columns, rows)
    return TextTable(table, headers, rows, "xlsx", None, "xlsx", tuple(notes))


def _sheet_columns(sheet, limits: Limits):
    """Header and text columns of a sheet, refusing it as soon as it breaks a limit."""
    headers: list[str] | None = None
    columns: list[list[str | None]] = []
    pending_blank = 0
    rows = wider = 0
    for values in sheet.iter_rows(values_only=True):
        if headers is None:
            if not any(v is not None for v in values):
                continue
            if len(values) > limits.max_columns:
                raise UnreadableFile(f"the header has {len(values)} columns, over the limit of "
                                     f"{limits.max_columns}: send the registry's columns only")
            headers = [_cell_text(h) or "" for h in values]
            while headers and headers[-1] == "":
                headers.pop()
            columns = [[] for _ in headers]
            continue
        texts = [_cell_text(v) for v in values[: len(headers)]]
        if len(values) > len(headers) and any(v is not None for v in values[len(headers):]):
            wider += 1
        if not any(t is not None for t in texts):
            pending_blank += 1          # blank rows count only if data follows them
            continue
        for _ in range(pending_blank):
            for column in columns:
                column.append(None)
        rows += pending_blank + 1
        pending_blank = 0
        if rows > limits.max_rows:
            raise UnreadableFile(f"the sheet has more than {limits.max_rows} rows: split it by period")
        for i, column in enumerate(columns):
            text = texts[i] if i < len(texts) else None
            if text is not None and len(text) > limits.max_line_bytes:
                raise UnreadableFile(f"row {rows}, column {quoted(headers[i])} holds {len(text)} characters, over "
                                     f"the limit of {limits.max_line_bytes}")
            column.append(text)
    return headers, columns, rows, wider


def _load_columns(con: duckdb.DuckDBPyConnection, table: str, columns: list[list], rows: int) -> None:
    import pyarrow as pa

    arrays = {"row_number": pa.array(range(1, rows + 1), pa.int64())}
    for i, values in enumerate(columns):
        arrays[f"c{i}"] = pa.array(values, pa.string())
    con.register("_incoming", pa.table(arrays))
    try:
        con.execute(f"create or replace temp table {table} as select * from _incoming")
    finally:
        con.unregister("_incoming")


def _load_rows(con: duckdb.DuckDBPyConnection, table: str, headers: list, rows: list[list]) -> None:
    """Rows of Python values as a text table (kept for callers with rows in hand)."""
    columns = [[_cell_text(r[i]) if i < len(r) else None for r in rows] for i in range(len(headers))]
    _load_columns(con, table, columns, len(rows))


# --- Parquet ------------------------------------------------------------------

def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, table: str, limits: Limits) -> TextTable:
    head = _head(path, 4)
    if head != b"PAR1":
        other = _other_format(head)
        raise UnreadableFile(f"the file is named .parquet but is {other[0]}" if other
                             else "the file is named .parquet but is not a Parquet file")
    try:
        rel = con.sql("select * from read_parquet(?)", params=[str(path)])
        headers, types = list(rel.columns), [str(t) for t in rel.types]
    except duckdb.Error as exc:
        raise UnreadableFile(f"the file is not a readable Parquet file: {str(exc).splitlines()[0][:200]}") from exc
    if len(headers) > limits.max_columns:
        raise UnreadableFile(f"the file has {len(headers)} columns, over the limit of {limits.max_columns}")
    nested = [h for h, t in zip(headers, types) if NESTED_TYPE.search(t)]
    if nested:
        raise UnreadableFile("columns hold nested values (lists, structs or maps): "
                             + ", ".join(quoted(h) for h in nested[:10]) + "; registry files must be flat tables")
    casts = ", ".join(f'cast("{h.replace(chr(34), chr(34) * 2)}" as varchar) as c{i}' for i, h in enumerate(headers))
    try:
        con.execute(f"create or replace temp table {table} as select row_number() over () as row_number, {casts} "
                    "from read_parquet(?)", [str(path)])
    except duckdb.Error as exc:
        raise UnreadableFile(f"the file is not a readable Parquet file: {str(exc).splitlines()[0][:200]}") from exc
    rows = con.execute(f"select count(*) from {table}").fetchone()[0]
    if rows > limits.max_rows:
        raise UnreadableFile(f"the file has {rows} rows, over the limit of {limits.max_rows}: split it by period")
    if headers:
        longest = con.execute(f"select greatest({', '.join(f'max(strlen(c{i}))' for i in range(len(headers)))}) "
                              f"from {table}").fetchone()[0]
        if longest and longest > limits.max_line_bytes:
            raise UnreadableFile(f"a cell holds {longest} bytes, over the limit of {limits.max_line_bytes}")
    return TextTable(table, headers, rows, "parquet", None, "parquet")


def read_text_table(con: duckdb.DuckDBPyConnection, path: Path, table: str = "incoming_text",
                    limits: Limits | None = None) -> TextTable:
    """Read ``path`` (CSV, XLSX or Parquet, by its suffix) into a temp table of text."""
    limits = limits or Limits()
    suffix = path.suffix.lower()
    if suffix == ".xlsm":
        raise UnreadableFile("macro-enabled workbooks (.xlsm) are not accepted: save the sheet as an Excel "
                             "workbook (.xlsx) and send that")
    if suffix == ".xls":
        raise UnreadableFile("old Excel 97-2003 workbooks (.xls) are not accepted: save it as .xlsx or CSV")
    if suffix == ".xlsx":
        return _read_xlsx(con, path, table, limits)
    if suffix == ".parquet":
        return _read_parquet(con, path, table, limits)
    if suffix in (".csv", ".txt", ".tsv", ""):
        with tempfile.TemporaryDirectory(prefix="cqi-read-") as workdir:
            return _read_csv(con, path, table, Path(workdir), limits)
    raise UnreadableFile(f"files of type {quoted(suffix)} are not accepted: send CSV, XLSX or Parquet")


__all__ = ["Limits", "TextTable", "UnreadableFile", "detect_delimiter", "detect_encoding", "quoted",
           "read_text_table"]
