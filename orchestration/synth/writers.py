"""Writing submissions the way sites really send them.

Ordinary files are UTF-8 CSV written by Arrow (no per-row Python). The
whole-file problems reproduce what coordinating centres actually receive:
semicolon delimiters from European Excel, Latin-1 exports, a byte-order
mark, headers in a site's own spelling, a missing column, an Excel workbook
and a file carrying another site's rows. Output is byte-for-byte
deterministic: no timestamps, and the workbook's creation date is fixed.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from ..registry import Registry

FIXED_CREATED = datetime(2025, 1, 1, 0, 0, 0)
BOM = b"\xef\xbb\xbf"


def csv_bytes(table: pa.Table, delimiter: str = ",", header: list[str] | None = None) -> bytes:
    """CSV text of ``table``; values are quoted only if some value needs it."""
    names = header or table.column_names
    sink = pa.BufferOutputStream()
    try:
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, delimiter=delimiter,
                                                        quoting_style="none"))
        quote = False
    except pa.ArrowInvalid:   # a value holds the delimiter or a quote: quote what needs it
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, delimiter=delimiter))
        quote = True
    head = delimiter.join(f'"{n}"' if quote or delimiter in n else n for n in names) + "\n"
    return head.encode("utf-8") + sink.getvalue().to_pybytes()


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_xlsx(table: pa.Table, path: Path) -> Path:
    """An Excel workbook: numbers as numbers, dates as date cells, blanks as empty cells."""
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    book.set_properties({"created": FIXED_CREATED, "author": "cqi-synth"})
    sheet = book.add_worksheet("cases")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, table.column_names)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for r in range(table.num_rows):
        for c, column in enumerate(columns):
            value = column[r]
            if value is None:
                continue
            if isinstance(value, date):
                sheet.write_datetime(r + 1, c, datetime(value.year, value.month, value.day), date_format)
            elif isinstance(value, (int, float)):
                sheet.write_number(r + 1, c, value)
            else:
                sheet.write_string(r + 1, c, str(value))
    book.close()
    return path


def alias_header(registry: Registry, names: list[str]) -> list[str]:
    """Each column under its first dictionary alias (short ones upper-case: MRN, DOB; others
    capitalised: Gender) and the rest in upper case, as a site's own export might name them."""
    renamed = []
    for name in names:
        variable = registry.variable(name)
        if variable.aliases:
            alias = variable.aliases[0]
            renamed.append(alias.upper() if len(alias) <= 3 else alias[:1].upper() + alias[1:])
        else:
            renamed.append(name.upper())
    return renamed


def write_problem_file(kind: str, problem: dict, table: pa.Table, registry: Registry, path_csv: Path,
                       other_site: str, site_field: str) -> tuple[Path, str]:
    """Write one whole-file problem; returns the path written and a note for the truth."""
    if kind == "semicolon_delimiter":
        return write_bytes(path_csv, csv_bytes(table, ";")), "semicolon-delimited CSV"
    if kind == "latin1_encoding":
        text = csv_bytes(table).decode("utf-8")
        return write_bytes(path_csv, text.encode("latin-1")), "Latin-1 encoded, with accented patient names"
    if kind == "utf8_bom":
        return write_bytes(path_csv, BOM + csv_bytes(table)), "UTF-8 with a byte-order mark"
    if kind == "alias_headers":
        header = alias_header(registry, table.column_names)
        return write_bytes(path_csv, csv_bytes(table, header=header)), "headers: " + ", ".join(header[:6]) + ", ..."
    if kind == "missing_required_column":
        column = problem.get("column") or next(v.name for v in registry.variables
                                               if v.required and v.name not in ("case_id", "site_id"))
        dropped = table.drop_columns([column])
        return write_bytes(path_csv, csv_bytes(dropped)), f"required column {column} is missing"
    if kind == "xlsx_format":
        return write_xlsx(table, path_csv.with_suffix(".xlsx")), "Excel workbook (.xlsx) instead of CSV"
    if kind == "wrong_site_id":
        index = table.schema.get_field_index(site_field)
        swapped = table.set_column(index, site_field, pa.array([other_site] * table.num_rows, pa.string()))
        return write_bytes(path_csv, csv_bytes(swapped)), f"every row names site {other_site}"
    raise ValueError(f"file_problems: unknown kind {kind!r}")


def write_csv_rows(path: Path, columns: list[str], rows: list[dict]) -> Path:
    """A small truth CSV (UTF-8, "\\n" line ends, quoted only where needed)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_bytes(path, buffer.getvalue().encode("utf-8"))
