"""Builders of broken and hostile submissions, for the bad-input corpus.

Each builder writes one file into a site folder and returns its path. Rows
start from ``support.clean_row`` so that a file is broken only in the way its
name says.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import zipfile
from pathlib import Path

from support import clean_row

from orchestration.registry import Registry


def rows(registry: Registry, site_id: str = "S01", count: int = 3, **changes_by_row: dict) -> list[dict[str, str]]:
    """``count`` clean rows; ``row0={...}`` changes the first row, and so on."""
    table = [clean_row(registry, site_id, i) for i in range(1, count + 1)]
    for key, changes in changes_by_row.items():
        table[int(key.removeprefix("row"))].update(changes)
    return table


def csv_text(table: list[dict[str, str]], delimiter: str = ",", header: list[str] | None = None,
             newline: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header or list(table[0]))
    for row in table:
        writer.writerow(list(row.values()))
    return buffer.getvalue()


def put(folder: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` as ``folder/name`` (text is encoded with ``encoding``)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def good_csv(registry: Registry, folder: Path, site_id: str = "S01", name: str | None = None,
             count: int = 3, **changes_by_row: dict) -> Path:
    return put(folder, name or f"{site_id}_2025Q1.csv", csv_text(rows(registry, site_id, count, **changes_by_row)))


def workbook(path: Path, table: list[list], extra_sheets: dict[str, list[list]] | None = None) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "cases"
    for row in table:
        sheet.append(row)
    for title, content in (extra_sheets or {}).items():
        other = book.create_sheet(title)
        for row in content:
            other.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def as_lists(table: list[dict[str, str]]) -> list[list]:
    return [list(table[0])] + [list(row.values()) for row in table]


def workbook_with_formula(registry: Registry, path: Path) -> Path:
    """An XLSX whose albumin cells are formulas with cached values (as Excel saves them)."""
    import xlsxwriter

    table = rows(registry, "S01", 3)
    header = list(table[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    sheet = book.add_worksheet("cases")
    sheet.write_row(0, 0, header)
    albumin = header.index("albumin")
    for r, row in enumerate(table, start=1):
        sheet.write_row(r, 0, [row[h] for h in header])
        sheet.write_formula(r, albumin, "=3+0.5", None, 3.5)
    book.close()
    return path


def workbook_with_dates(registry: Registry, path: Path) -> Path:
    """Dates stored the Excel way (serial numbers with a date format), and one serial without it."""
    import xlsxwriter
    from datetime import date

    table = rows(registry, "S01", 2)
    header = list(table[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    sheet = book.add_worksheet("cases")
    date_format = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet.write_row(0, 0, header)
    for r, row in enumerate(table, start=1):
        sheet.write_row(r, 0, [row[h] for h in header])
        for name in ("admission_date", "operation_date"):
            sheet.write_datetime(r, header.index(name), date(2025, 2, 10), date_format)
    sheet.write_number(2, header.index("discharge_date"), 45703)   # 2025-02-13 as a bare day number
    book.close()
    return path


def macro_workbook(registry: Registry, path: Path) -> Path:
    """A plain workbook with a ``vbaProject.bin`` added: a macro inside an .xlsx/.xlsm."""
    plain = workbook(path.with_name("plain.xlsx"), as_lists(rows(registry)))
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            out.writestr(item, source.read(item))
        out.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0" + b"Attribute VB_Name = \"Module1\"" * 10)
    plain.unlink()
    return path


def zip_bomb(path: Path, uncompressed_mb: int = 64) -> Path:
    """An 'XLSX' whose sheet unpacks from a few kilobytes to ``uncompressed_mb`` MB of zeros."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        out.writestr("[Content_Types].xml", "<Types/>")
        out.writestr("xl/workbook.xml", "<workbook/>")
        with out.open("xl/worksheets/sheet1.xml", "w") as member:
            block = b"\0" * (1 << 20)
            for _ in range(uncompressed_mb):
                member.write(block)
    return path


def nested_parquet(registry: Registry, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = rows(registry)
    columns = {name: pa.array([row[name] for row in table]) for name in table[0]}
    columns["albumin"] = pa.array([{"value": 3.5, "unit": "g/dL"}] * len(table))
    columns["comorbidities"] = pa.array([["copd"], [], ["diabetes", "copd"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


def random_bytes(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def gzip_of(text: str) -> bytes:
    return gzip.compress(text.encode())


def enormous_field(registry: Registry, folder: Path, megabytes: int, name: str = "S01_2025Q1.csv") -> Path:
    """A CSV whose first row's patient name is ``megabytes`` MB long, written in chunks."""
    table = rows(registry)
    header = list(table[0])
    column = header.index("patient_name")
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        out.write(",".join(header) + "\n")
        first = [table[0][h] for h in header]
        out.write(",".join(first[:column]) + ',"')
        chunk = "x" * (1 << 20)
        for _ in range(megabytes):
            out.write(chunk)
        out.write('",' + ",".join(first[column + 1:]) + "\n")
        for row in table[1:]:
            out.write(",".join(row[h] for h in header) + "\n")
    return path


def wide_file(registry: Registry, folder: Path, columns: int = 10_000) -> Path:
    """The registry's columns plus thousands of extra ones."""
    table = rows(registry)
    header = list(table[0]) + [f"extra_{i}" for i in range(columns - len(table[0]))]
    lines = [",".join(header)] + [",".join(list(row.values()) + ["1"] * (len(header) - len(row))) for row in table]
    return put(folder, "S01_2025Q1.csv", "\n".join(lines) + "\n")
