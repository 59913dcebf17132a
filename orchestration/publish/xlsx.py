"""A fast XLSX writer for publication tables, cell for cell what xlsxwriter writes.

Why not ``DataFrame.to_excel``: a site's workbook holds the comparison with
every peer (700 sites x 4 measures x 22 columns, ~60,000 cells), and pandas
plus xlsxwriter spend half a second on it per site, over five minutes for a
publication. Here a table is turned into cell XML once per column (numbers,
text, dates and booleans as pandas' ExcelFormatter would pass them to
xlsxwriter); a sheet is the rows' XML joined. The comparison sheet is the
same for every site but for the site's own rows, so its rows are built once
per period and only the site's rows are swapped in (``SheetRows``).

What the workbook holds is exactly what xlsxwriter writes in
``constant_memory`` mode (inline strings, no shared-string table): every
part except the sheets comes from xlsxwriter itself (a skeleton workbook per
set of sheet names), and each sheet's XML is the one xlsxwriter writes for
the same cells (tests/unit/test_publish_xlsx.py compares them). Only the
deflate compression of the zip differs (level 1 here), so a reader sees the
same cells, types and formats as before. The shared sheet is compressed once
per period too, in blocks that concatenate (``Block``), so a site's workbook
costs the compression of its own rows only.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.utility import _datetime_to_excel_datetime, _preserve_whitespace, xl_col_to_name
from xlsxwriter.xmlwriter import XMLwriter

DATETIME_FORMAT = "YYYY-MM-DD HH:MM:SS"   # pandas' default for datetime cells with xlsxwriter
STRING_MAX = 32767                        # xlsxwriter truncates longer strings
CREATED = dt.datetime(2000, 1, 1)         # fixed document date: reproducible bytes
COMPRESSION = 1                           # deflate level of the zip members
_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')
_SHEET_DATA = re.compile(r"<sheetData/>|<sheetData>.*</sheetData>", re.S)


def _text_tail(value: str) -> str:
    """The rest of an inline-string cell after ``<c r="A1"``."""
    if len(value) > STRING_MAX:
        value = value[:STRING_MAX]
    value = XMLwriter._escape_control_characters(value)
    preserve = ' xml:space="preserve"' if _preserve_whitespace(value) else ""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f' t="inlineStr"><is><t{preserve}>{value}</t></is></c>'


def _number_tail(value) -> str:
    return f"><v>{value:.16G}</v></c>"


def _value_tail(value) -> str | None:
    """One cell as pandas' ExcelFormatter and xlsxwriter write it (None: no cell)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return f' t="b"><v>{int(bool(value))}</v></c>'
    if isinstance(value, (int, np.integer)):
        return _number_tail(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return _text_tail("inf" if value > 0 else "-inf")
        return _number_tail(value)
    if isinstance(value, dt.datetime):
        return f' s="1"><v>{_datetime_to_excel_datetime(value, False, False):.16G}</v></c>'
    if isinstance(value, (dt.date, dt.timedelta)):
        raise TypeError(f"no date or duration cells in publication tables: {value!r}")
    text = str(value)
    return _text_tail(text) if text else None


def _text_tails(values) -> list[str | None]:
    """``_value_tail`` of each string, the common plain ones (printable, no markup or escape-like
    ``_x``, no surrounding whitespace) without the escaping they do not need."""
    out = []
    for value in values:
        if (isinstance(value, str) and value.isprintable() and value.strip() == value and 0 < len(value) <= STRING_MAX
                and "&" not in value and "<" not in value and ">" not in value and "_x" not in value):
            out.append(f' t="inlineStr"><is><t>{value}</t></is></c>')
        else:
            out.append(_value_tail(value))
    return out


def _column_tails(series: pd.Series) -> list[str | None]:
    """Every cell of a column, as pandas iterates it (Timestamps for dates, Python scalars otherwise).

    Each distinct value is turned into XML once (columns repeat periods, measures, dates); in a
    column of mixed Python objects values are also told apart by type (1.0, 1 and True are
    different cells), elsewhere pandas' factorisation finds them.
    """
    if series.dtype == np.float64:
        values = series.to_numpy().tolist()
        isfinite = math.isfinite
        return [f"><v>{v:.16G}</v></c>" if isfinite(v) else _value_tail(v) for v in values]
    if series.dtype != object:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        if pd.api.types.is_string_dtype(series.dtype):
            tails = _text_tails(list(uniques))
        else:
            tails = [_value_tail(value) for value in uniques]
        tails.append(None)      # code -1: a missing value, no cell
        return [tails[code] for code in codes.tolist()]
    done: dict = {}
    out = []
    for value in series.tolist():
        key = (type(value), value)
        try:
            tail = done[key]
        except KeyError:
            tail = done[key] = _value_tail(value)
        except TypeError:      # an unhashable value
            tail = _value_tail(value)
        out.append(tail)
    return out


def _is_date(tail: str | None) -> bool:
    return tail is not None and tail.startswith(' s="1"')


class Cells:
    """A table as cell XML, per column: built once, sliced per site."""

    def __init__(self, frame: pd.DataFrame):
        self.columns = [str(c) for c in frame.columns]
        self.letters = [xl_col_to_name(i) for i in range(len(self.columns))]
        self.header = [_value_tail(c) for c in self.columns]
        self.tails = [_column_tails(frame.iloc[:, i]) for i in range(frame.shape[1])]
        self.rows = len(frame)
        self.date_columns = [c for c, column in enumerate(self.tails) if any(map(_is_date, column))]

    def has_dates(self, positions) -> bool:
        return any(_is_date(self.tails[c][i]) for c in self.date_columns for i in positions)

    def row_xml(self, positions, first_row: int = 2) -> list[str]:
        """The ``<row>`` element of each row at ``positions``, numbered from ``first_row`` ("" if no cell)."""
        out = []
        letters, tails = self.letters, self.tails
        for number, i in enumerate(positions, start=first_row):
            cells = "".join(f'<c r="{letter}{number}"{column[i]}' for letter, column in zip(letters, tails)
                            if column[i] is not None)
            out.append(f'<row r="{number}">{cells}</row>' if cells else "")
        return out

    def header_xml(self) -> str:
        cells = "".join(f'<c r="{letter}1"{tail}' for letter, tail in zip(self.letters, self.header)
                        if tail is not None)
        return f'<row r="1">{cells}</row>' if cells else ""


GROUP = 64      # rows per separately compressed block of a shared sheet


@dataclass(frozen=True)
class Block:
    """Some bytes of a zip member and their raw deflate stream, ended on a full flush so that
    blocks compressed apart concatenate into one valid stream (as pigz does)."""

    raw: bytes
    deflated: bytes

    @classmethod
    def of(cls, raw: bytes) -> "Block":
        compressor = zlib.compressobj(COMPRESSION, zlib.DEFLATED, -15)
        return cls(raw, compressor.compress(raw) + compressor.flush(zlib.Z_FULL_FLUSH))


_END = zlib.compressobj(COMPRESSION, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)   # a final empty block


class Sheet:
    """One worksheet's rows (compressed blocks of XML) and its extent, ready to be put in a workbook."""

    def __init__(self, blocks: list[Block], last_row: int, columns: int, has_dates: bool):
        self.blocks, self.last_row, self.columns, self.has_dates = blocks, last_row, columns, has_dates

    @classmethod
    def of(cls, cells: Cells, positions=None) -> "Sheet":
        positions = range(cells.rows) if positions is None else positions
        rows = [r for r in (cells.header_xml(), *cells.row_xml(positions)) if r]
        blocks = [Block.of("".join(rows).encode("utf-8"))] if rows else []
        return cls(blocks, _last_row(rows), len(cells.columns), cells.has_dates(positions))

    def dimension(self) -> str:
        if not self.blocks:
            return "A1"
        last_column = xl_col_to_name(self.columns - 1)
        if self.last_row == 1 and self.columns == 1:
            return "A1"
        return f"A1:{last_column}{self.last_row}"


def _last_row(rows: list[str]) -> int:
    if not rows:
        return 0
    return int(rows[-1][8:rows[-1].index('"', 8)])


class SheetRows:
    """A sheet shared by every site but for a few rows: its rows built and compressed once, in blocks of
    ``GROUP`` rows; a site's sheet recompresses only the blocks holding its own rows."""

    def __init__(self, plain: Cells, variant: Cells):
        if plain.rows != variant.rows or len(plain.columns) != len(variant.columns):
            raise ValueError("the two variants of a shared sheet must have the same shape")
        self.header = plain.header_xml()
        self.plain = plain.row_xml(range(plain.rows))
        self.variant = variant.row_xml(range(variant.rows))
        self.columns = len(plain.columns)
        self.dates = plain.has_dates(range(plain.rows)) or variant.has_dates(range(variant.rows))
        self.blocks = [Block.of("".join(self.plain[i:i + GROUP]).encode("utf-8"))
                       for i in range(0, len(self.plain), GROUP)]
        self.head = Block.of(self.header.encode("utf-8")) if self.header else None

    def sheet(self, swapped) -> Sheet:
        swapped = set(swapped)
        blocks = list(self.blocks)
        for g in sorted({i // GROUP for i in swapped}):
            rows = [self.variant[i] if i in swapped else self.plain[i]
                    for i in range(g * GROUP, min((g + 1) * GROUP, len(self.plain)))]
            blocks[g] = Block.of("".join(rows).encode("utf-8"))
        last = next((r for i in reversed(range(len(self.plain)))
                     for r in [self.variant[i] if i in swapped else self.plain[i]] if r), self.header)
        blocks = [b for b in ([self.head] if self.head else []) + blocks if b.raw]
        return Sheet(blocks, _last_row([last] if last else []), self.columns, self.dates)


@lru_cache(maxsize=16)
def _skeleton(names: tuple[str, ...], dates: bool) -> tuple[tuple[str, bytes], ...]:
    """Every part of an xlsxwriter workbook with these sheets (constant_memory, as pandas would name them)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"constant_memory": True, "in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    book.set_properties({"created": CREATED})
    sheets = [book.add_worksheet(name) for name in names]
    if dates:   # registers the date style exactly as a first date cell does
        sheets[0].write_datetime(0, 0, CREATED, book.add_format({"num_format": DATETIME_FORMAT}))
    book.close()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        return tuple((info.filename, archive.read(info.filename)) for info in archive.infolist())


@lru_cache(maxsize=64)
def _fixed(data: bytes) -> Block:
    return Block.of(data)


def sheet_blocks(template: bytes, sheet: Sheet) -> list[Block]:
    """A sheet's XML: xlsxwriter's (empty) sheet with the dimension and the rows put in."""
    text = _DIMENSION.sub(f'<dimension ref="{sheet.dimension()}"/>', template.decode("utf-8"), count=1)
    if not sheet.blocks:
        return [_fixed(text.encode("utf-8"))]
    before, after = _SHEET_DATA.split(text, maxsplit=1)
    return [_fixed(f"{before}<sheetData>".encode("utf-8")), *sheet.blocks,
            _fixed(f"</sheetData>{after}".encode("utf-8"))]


_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 31     # 1980-01-31 00:00, as xlsxwriter stamps its parts


def _zip(members: list[tuple[str, list[Block]]]) -> bytes:
    """A zip archive of deflated members (local headers, data, central directory)."""
    out, central, offset = [], [], 0
    for name, blocks in members:
        crc, size = 0, 0
        for block in blocks:
            crc = zlib.crc32(block.raw, crc)
            size += len(block.raw)
        data = b"".join(block.deflated for block in blocks) + _END
        encoded = name.encode("utf-8")
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, _DOS_TIME, _DOS_DATE, crc, len(data), size,
                             len(encoded), 0)
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, _DOS_TIME, _DOS_DATE, crc, len(data),
                                   size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
        out += [header, encoded, data]
        offset += len(header) + len(encoded) + len(data)
    directory = b"".join(central)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), offset, 0)
    return b"".join(out) + directory + end


def write_workbook(sheets: dict[str, Sheet], path: Path) -> Path:
    """The workbook at ``path`` (through a partial file renamed into place)."""
    names = tuple(name[:31] for name in sheets)
    parts = _skeleton(names, any(s.has_dates for s in sheets.values()))
    by_index = {f"xl/worksheets/sheet{i}.xml": sheet for i, sheet in enumerate(sheets.values(), start=1)}
    members = [(name, sheet_blocks(data, by_index[name]) if name in by_index else [_fixed(data)])
               for name, data in parts]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(_zip(members))
    partial.replace(path)
    return path
